#[rc::cache]
const fn load(id: u32) -> u32 {
    id
}

fn main() {}
