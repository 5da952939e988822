struct Db;

#[rc::cache]
fn load(db: &Db, id: u32) -> u32 {
    let _ = db;
    id
}

fn main() {}
