//! Work over many files on every core with results in the files' order,
//! one bounded batch at a time: `check` and `rewrite` print each file's
//! output as its batch finishes, so a run never holds every file's result.

use rayon::prelude::*;

/// Items worked on before their results are handed on.
pub const SIZE: usize = 256;

/// Runs `work` on every item, in parallel when `parallel` (and there is more
/// than one item: one file, the pre-commit case, is not worth starting the
/// thread pool), and hands the results to `each` in `items`' order.
pub fn in_order<I: Sync, T: Send>(
    items: &[I],
    parallel: bool,
    work: impl Fn(&I) -> T + Sync,
    mut each: impl FnMut(T),
) {
    if !parallel || items.len() < 2 {
        items.iter().map(&work).for_each(each);
        return;
    }
    for batch in items.chunks(SIZE) {
        let done: Vec<T> = batch.par_iter().map(&work).collect();
        done.into_iter().for_each(&mut each);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_item_order_across_batches() {
        let items: Vec<usize> = (0..SIZE * 2 + 7).collect();
        for parallel in [true, false] {
            let mut seen = Vec::new();
            in_order(&items, parallel, |i| i * 3, |r| seen.push(r));
            assert_eq!(seen, items.iter().map(|i| i * 3).collect::<Vec<_>>());
        }
    }
}
