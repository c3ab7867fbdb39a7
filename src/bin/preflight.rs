fn main() -> std::process::ExitCode {
    preflight::main()
}
