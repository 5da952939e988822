#[rc::cache(skip(conn))]
fn load(db: &str, id: u32) -> u32 {
    let _ = db;
    id
}

#[rc::cache(skip(self))]
fn load2(id: u32) -> u32 {
    id
}

fn main() {}
