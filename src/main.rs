fn main() -> std::process::ExitCode {
    kmigrate::cli::main()
}
