fn main() -> std::process::ExitCode {
    add_sync_filter::main()
}
