trait Load {
    fn load(&self, id: u32) -> u32;
}
struct S;
impl Load for S {
    #[rc::cache]
    fn load(&self, id: u32) -> u32 {
        id
    }
}
fn main() {}
