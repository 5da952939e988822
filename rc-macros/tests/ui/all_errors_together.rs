// Every mistake of one attribute is reported, not only the first.

#[rc::cache(expires = 60, expire = "1h")]
fn load(id: u32) -> u32 {
    id
}

#[rc::cache(skip(conn), include_self = true, key_prefix = 2)]
fn find(_: u32) -> u32 {
    1
}

fn main() {}
