#[rc::cache(python_args = true)]
fn with_a_value(id: u32) -> u32 {
    id
}

#[rc::cache(python_args(strict))]
fn with_a_list(id: u32) -> u32 {
    id
}

fn main() {
    let _ = (with_a_value(1), with_a_list(1));
}
