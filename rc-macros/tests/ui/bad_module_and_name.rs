#[rc::cache(module = 3)]
fn by_number(id: u32) -> u32 {
    id
}

#[rc::cache(name = "get post")]
fn with_a_space(id: u32) -> u32 {
    id
}

fn main() {
    let _ = (by_number(1), with_a_space(1));
}
