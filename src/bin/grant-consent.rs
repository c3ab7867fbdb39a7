fn main() -> std::process::ExitCode {
    grant_consent::main()
}
