// mimalloc: a check allocates and frees many small nodes on every core, and
// glibc's malloc spent a quarter of the run on that (perf, see README
// "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    use_mimalloc_for_parser();
    kmigrate::cli::main()
}

/// Sends tree-sitter's own allocations to mimalloc, the allocator the
/// binary uses, instead of the C library's malloc: parsing allocates and
/// frees a node per token on every core. Called once, before the first
/// parse.
fn use_mimalloc_for_parser() {
    use libmimalloc_sys as mi;
    // SAFETY: the four functions are a consistent malloc family, and no
    // tree-sitter object exists yet, so nothing allocated by the previous
    // allocator is ever freed by this one.
    unsafe {
        tree_sitter::set_allocator(
            Some(mi::mi_malloc),
            Some(mi::mi_calloc),
            Some(mi::mi_realloc),
            Some(mi::mi_free),
        );
    }
}
