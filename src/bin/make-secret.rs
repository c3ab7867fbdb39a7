fn main() -> std::process::ExitCode {
    make_secret::main()
}
