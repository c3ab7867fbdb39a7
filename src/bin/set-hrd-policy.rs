fn main() -> std::process::ExitCode {
    set_hrd_policy::main()
}
