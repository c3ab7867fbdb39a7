fn main() -> std::process::ExitCode {
    assign_role::main()
}
