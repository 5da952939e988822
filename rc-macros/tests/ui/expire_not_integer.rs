#[rc::cache(expire = "1h")]
fn load(id: u32) -> u32 {
    id
}

#[rc::cache(expire = 1.5)]
fn load_float(id: u32) -> u32 {
    id
}

#[rc::cache(expire = 0)]
fn load_zero(id: u32) -> u32 {
    id
}

fn main() {}
