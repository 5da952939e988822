#[rc::cache]
fn load((a, b): (u32, u32)) -> u32 {
    a + b
}

#[rc::cache]
fn load2(_: u32) -> u32 {
    1
}

fn main() {}
