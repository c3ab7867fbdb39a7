fn main() -> std::process::ExitCode {
    register_app::main()
}
