fn main() -> std::process::ExitCode {
    publish_customizations::main()
}
