//! Lifetime rewriting for the generated `batch_<fn>`.
//!
//! A batch stores the call's body until `run`, so everything the body may
//! capture must outlive the batch's lifetime `'__rc`:
//!
//! * every elided reference (`&T`, `&self`) and every `'_` in an argument
//!   type becomes `'__rc`;
//! * every named lifetime `'a` of the function gets `'a: '__rc`, and every
//!   other named lifetime in the arguments (one of the enclosing `impl`) gets a
//!   `where 'a: '__rc`;
//! * every type parameter `T` of the function gets `T: '__rc`, and `Self` and
//!   every other type-parameter-like name (`T`, `K`, `E2`: a parameter of the
//!   enclosing `impl`) in the arguments or the return type gets
//!   `where X: '__rc` (see [`is_type_param_like`]);
//! * every `impl Trait` argument gets `+ '__rc`.
//!
//! Lifetimes inside `fn(..)` pointer types and `Fn(..)` sugar are left alone:
//! they are higher-ranked, not the caller's.

use proc_macro2::Span;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    GenericParam, Generics, Ident, Lifetime, ParenthesizedGenericArguments, Type, TypeBareFn,
    TypeImplTrait, TypeParamBound, TypePath, TypeReference, WherePredicate,
};

/// The lifetime of a batch in generated `batch_<fn>` signatures.
pub(crate) fn batch_lifetime() -> Lifetime {
    Lifetime::new("'__rc", Span::call_site())
}

/// Rewrites one argument type of `batch_<fn>` in place (see module docs).
pub(crate) fn rewrite_arg_type(ty: &mut Type) {
    Rewrite.visit_type_mut(ty);
}

struct Rewrite;

/// Replaces every named lifetime in `ty` but `'static` with `'_`, for a
/// local borrow of an argument's owned copy.
pub(crate) fn elide(ty: &mut Type) {
    struct Elide;
    impl VisitMut for Elide {
        fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
            if l.ident != "static" {
                *l = Lifetime::new("'_", l.apostrophe);
            }
        }
    }
    Elide.visit_type_mut(ty);
}

impl VisitMut for Rewrite {
    fn visit_type_reference_mut(&mut self, r: &mut TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some(Lifetime::new("'__rc", r.and_token.span));
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }

    fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
        if l.ident == "_" {
            *l = Lifetime::new("'__rc", l.apostrophe);
        }
    }

    fn visit_type_bare_fn_mut(&mut self, _: &mut TypeBareFn) {}

    fn visit_parenthesized_generic_arguments_mut(&mut self, _: &mut ParenthesizedGenericArguments) {
    }

    fn visit_type_impl_trait_mut(&mut self, t: &mut TypeImplTrait) {
        t.bounds.push(TypeParamBound::Lifetime(Lifetime::new(
            "'__rc",
            t.impl_token.span,
        )));
    }
}

/// Names found in argument and return types that need an outlives bound.
#[derive(Default)]
pub(crate) struct Outlives {
    /// Named lifetimes other than `'static` and `'__rc`.
    pub(crate) lifetimes: Vec<Lifetime>,
    /// Bare type names (`T`, `Self`, `User`), without primitives.
    pub(crate) types: Vec<Ident>,
}

impl Outlives {
    /// Collects from one (already rewritten) type.
    pub(crate) fn collect(&mut self, ty: &Type) {
        Collect {
            out: self,
            in_fn_sugar: 0,
        }
        .visit_type(ty);
    }

    fn push_type(&mut self, ident: &Ident) {
        if (ident == "Self" || is_type_param_like(ident)) && !self.types.contains(ident) {
            self.types.push(ident.clone());
        }
    }

    fn push_lifetime(&mut self, l: &Lifetime) {
        if l.ident != "static" && l.ident != "__rc" && l.ident != "_" && !self.lifetimes.contains(l)
        {
            self.lifetimes.push(l.clone());
        }
    }
}

struct Collect<'o> {
    out: &'o mut Outlives,
    /// > 0 inside `fn(..)` types and `Fn(..)` sugar, whose lifetimes are bound there.
    in_fn_sugar: usize,
}

impl<'ast> Visit<'ast> for Collect<'_> {
    fn visit_type_path(&mut self, p: &'ast TypePath) {
        if p.qself.is_none() {
            if let Some(ident) = p.path.get_ident() {
                self.out.push_type(ident);
                return;
            }
            // `T::Item`: its outlives follows from `T`'s.
            if let Some(first) = p.path.segments.first()
                && first.arguments.is_none()
                && p.path.leading_colon.is_none()
                && p.path.segments.len() == 2
                && (first.ident == "Self" || is_type_param_like(&first.ident))
            {
                self.out.push_type(&first.ident);
                for seg in p.path.segments.iter().skip(1) {
                    self.visit_path_arguments(&seg.arguments);
                }
                return;
            }
        }
        syn::visit::visit_type_path(self, p);
    }

    fn visit_lifetime(&mut self, l: &'ast Lifetime) {
        if self.in_fn_sugar == 0 {
            self.out.push_lifetime(l);
        }
    }

    fn visit_type_bare_fn(&mut self, f: &'ast TypeBareFn) {
        self.in_fn_sugar += 1;
        syn::visit::visit_type_bare_fn(self, f);
        self.in_fn_sugar -= 1;
    }

    fn visit_parenthesized_generic_arguments(&mut self, a: &'ast ParenthesizedGenericArguments) {
        self.in_fn_sugar += 1;
        syn::visit::visit_parenthesized_generic_arguments(self, a);
        self.in_fn_sugar -= 1;
    }

    // The anonymous parameter of `impl Trait` gets its own `+ '__rc`; what its
    // bounds mention needs no outlives bound.
    fn visit_type_impl_trait(&mut self, _: &'ast TypeImplTrait) {}
}

/// Whether a bare type name is spelled like a type parameter (`T`, `K`,
/// `E2`, `DB`): one to three upper-case letters or digits, starting with a
/// letter. Such names get an explicit `X: '__rc` bound, needed when `X` is a
/// parameter of the enclosing `impl` (for a function's own parameters the
/// bound is added to the parameter itself). Other names are taken to be
/// concrete types, whose outlives bound holds anyway; this keeps
/// `where Post: '__rc` noise out of the documentation. Parameters of the
/// `impl` are also covered, whatever their names, by a `&self` receiver
/// (implied bounds) or by `Self: '__rc` for other receivers.
fn is_type_param_like(ident: &Ident) -> bool {
    let name = ident.to_string();
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && name.len() <= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Adds `'__rc` first to `generics`, `'a: '__rc` to each lifetime parameter,
/// `T: '__rc` to each type parameter, and the where-clauses for what
/// `outlives` found that is not a parameter of the function.
pub(crate) fn add_batch_bounds(generics: &mut Generics, outlives: &Outlives, has_self: bool) {
    let rc = batch_lifetime();
    let mut own_lifetimes = Vec::new();
    let mut own_types = Vec::new();
    for param in &mut generics.params {
        match param {
            GenericParam::Lifetime(l) => {
                own_lifetimes.push(l.lifetime.clone());
                let in_where = generics.where_clause.as_mut().and_then(|w| {
                    w.predicates.iter_mut().find_map(|p| match p {
                        WherePredicate::Lifetime(pl) if pl.lifetime == l.lifetime => Some(pl),
                        _ => None,
                    })
                });
                // Next to the user's own bounds (clippy's
                // `multiple_bound_locations` would flag a second place).
                match in_where {
                    Some(pl) => pl.bounds.push(rc.clone()),
                    None => l.bounds.push(rc.clone()),
                }
            }
            GenericParam::Type(t) => {
                own_types.push(t.ident.clone());
                let in_where = generics.where_clause.as_mut().and_then(|w| {
                    w.predicates.iter_mut().find_map(|p| match p {
                        WherePredicate::Type(pt)
                            if pt.lifetimes.is_none()
                                && matches!(&pt.bounded_ty, Type::Path(tp)
                                    if tp.qself.is_none() && tp.path.is_ident(&t.ident)) =>
                        {
                            Some(pt)
                        }
                        _ => None,
                    })
                });
                let bound = TypeParamBound::Lifetime(rc.clone());
                match in_where {
                    Some(pt) if t.bounds.is_empty() => pt.bounds.push(bound),
                    _ => t.bounds.push(bound),
                }
            }
            GenericParam::Const(_) => {}
        }
    }
    generics.params.insert(
        0,
        GenericParam::Lifetime(syn::LifetimeParam::new(rc.clone())),
    );

    let mut predicates: Vec<WherePredicate> = Vec::new();
    for l in &outlives.lifetimes {
        if !own_lifetimes.contains(l) {
            predicates.push(syn::parse_quote!(#l: #rc));
        }
    }
    let mut self_bound = has_self;
    for t in &outlives.types {
        if t == "Self" {
            self_bound = true;
        } else if !own_types.contains(t) {
            predicates.push(syn::parse_quote!(#t: #rc));
        }
    }
    if self_bound {
        predicates.insert(0, syn::parse_quote!(Self: #rc));
    }
    if !predicates.is_empty() {
        generics.make_where_clause().predicates.extend(predicates);
    }
}
