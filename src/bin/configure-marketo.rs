fn main() -> std::process::ExitCode {
    configure_marketo::main()
}
