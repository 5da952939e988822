// A `Vec` prints as a Python list only with Python's repr of each item:
// no exact form, so `python_args` refuses it (a `Display` type would not do either).
#[rc::cache(python_args)]
fn total(ids: Vec<u32>, label: std::path::PathBuf) -> u32 {
    let _ = label;
    ids.iter().sum()
}

fn main() {}
