#[rc::cache]
fn load(id: u32) -> impl std::fmt::Display {
    id
}

fn main() {}
