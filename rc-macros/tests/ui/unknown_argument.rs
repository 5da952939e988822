#[rc::cache(expire = 60, expires = 60)]
fn load(id: u32) -> u32 {
    id
}

fn main() {}
