fn main() -> std::process::ExitCode {
    verify_sync::main()
}
