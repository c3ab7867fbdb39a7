fn main() -> std::process::ExitCode {
    tenant_sim::main()
}
