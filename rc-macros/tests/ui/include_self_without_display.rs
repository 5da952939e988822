struct User {
    id: u32,
}

impl User {
    #[rc::cache(include_self = true)]
    fn name(&self, n: u32) -> String {
        format!("{}{n}", self.id)
    }
}

fn main() {}
