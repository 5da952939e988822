#[rc::cache]
struct Post {
    id: u32,
}

#[rc::cache]
const LIMIT: u32 = 10;

fn main() {}
