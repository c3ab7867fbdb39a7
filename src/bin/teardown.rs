fn main() -> std::process::ExitCode {
    teardown::main()
}
