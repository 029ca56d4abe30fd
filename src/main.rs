// mimalloc: a check allocates and frees many small nodes on every core, and
// glibc's malloc spent a quarter of the run on that (perf, see README
// "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kmigrate::source::tree::use_mimalloc_for_parser();
    kmigrate::cli::main()
}
