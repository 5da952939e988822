//! Code generation: the cached wrapper, `invalidate_<fn>` and `batch_<fn>`.
//!
//! Generated code names runtime items only through the facade
//! (`::rc::__private::..`, `::rc::Batch`, ..), so users depend on `rc` alone.
//! Locals introduced here use [`Span::mixed_site`] so they can neither shadow
//! nor be shadowed by the user's names.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, Expr, FnArg, Ident, Item, ItemFn, Pat, PatType, Receiver, ReturnType,
    Signature, Type, Visibility,
};

use crate::args::CacheArgs;
use crate::lifetimes::{self, Outlives};

/// Entry point: expands `#[rc::cache(attr)] item`. Errors come back as
/// `compile_error!`s next to the unchanged item, so that a misuse of the
/// attribute does not also break every caller of the function.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let parsed_item: Item = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => return with_item(e, item),
    };
    let func = match parsed_item {
        Item::Fn(f) => f,
        Item::Verbatim(v) => {
            let msg = "#[rc::cache] needs a function with a body";
            return with_item(syn::Error::new_spanned(&v, msg), item);
        }
        other => return with_item(not_a_function(&other), item),
    };
    let args: CacheArgs = match syn::parse2(attr) {
        Ok(a) => a,
        Err(e) => return with_item(e, item),
    };
    match Cached::new(args, func) {
        Ok(cached) => cached.generate(),
        Err(e) => with_item(e, item),
    }
}

fn with_item(err: syn::Error, item: TokenStream) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #item)
}

/// The error for the attribute on something else than a function, spanned on
/// the item's keyword and name.
fn not_a_function(item: &Item) -> syn::Error {
    fn pair(a: &dyn ToTokens, b: &dyn ToTokens) -> TokenStream {
        let mut t = a.to_token_stream();
        b.to_tokens(&mut t);
        t
    }
    let head: TokenStream = match item {
        Item::Struct(i) => pair(&i.struct_token, &i.ident),
        Item::Enum(i) => pair(&i.enum_token, &i.ident),
        Item::Union(i) => pair(&i.union_token, &i.ident),
        Item::Const(i) => pair(&i.const_token, &i.ident),
        Item::Static(i) => pair(&i.static_token, &i.ident),
        Item::Type(i) => pair(&i.type_token, &i.ident),
        Item::Trait(i) => pair(&i.trait_token, &i.ident),
        Item::TraitAlias(i) => pair(&i.trait_token, &i.ident),
        Item::Mod(i) => pair(&i.mod_token, &i.ident),
        Item::Impl(i) => pair(&i.impl_token, &i.self_ty),
        Item::Use(i) => i.use_token.to_token_stream(),
        Item::ExternCrate(i) => pair(&i.extern_token, &i.crate_token),
        Item::ForeignMod(i) => i.abi.to_token_stream(),
        Item::Macro(i) => i.mac.path.to_token_stream(),
        other => other.to_token_stream(),
    };
    syn::Error::new_spanned(
        head,
        "#[rc::cache] can only be applied to a function or method",
    )
}

/// One plain-identifier argument of the decorated function.
struct Arg {
    /// The argument as written (attributes, `mut`, type).
    typed: PatType,
    /// Its name.
    ident: Ident,
    /// Whether `skip(..)` leaves it out of the key.
    skipped: bool,
}

/// Everything needed to generate the three functions.
struct Cached {
    args: CacheArgs,
    func: ItemFn,
    receiver: Option<Receiver>,
    inputs: Vec<Arg>,
    /// The return type (`()` when there is none).
    ret: Type,
    /// `Some(T)` when the return type is `..Result<T, ..>`: only `Ok` is cached.
    result_ok: Option<Option<Type>>,
    is_async: bool,
}

impl Cached {
    fn new(args: CacheArgs, func: ItemFn) -> syn::Result<Self> {
        let sig = &func.sig;
        if let Some(c) = &sig.constness {
            return Err(syn::Error::new_spanned(
                c,
                "#[rc::cache] cannot be used on a `const fn`: a cached call talks to Redis at run time",
            ));
        }
        if let Some(v) = &sig.variadic {
            return Err(syn::Error::new_spanned(
                v,
                "#[rc::cache] does not support variadic functions",
            ));
        }
        if let ReturnType::Type(_, ty) = &sig.output
            && contains_impl_trait(ty)
        {
            return Err(syn::Error::new_spanned(
                ty,
                "a cached function must return a concrete type (cached values are deserialized), not `impl Trait`",
            ));
        }

        let mut receiver = None;
        let mut inputs = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r.clone()),
                FnArg::Typed(t) => {
                    let ident = match &*t.pat {
                        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                            p.ident.clone()
                        }
                        Pat::Wild(w) => {
                            return Err(syn::Error::new_spanned(
                                w,
                                "#[rc::cache] needs a name for each argument (it is part of \
                                 the cache key): name it, and leave it out of the key with \
                                 `skip(<name>)` if it should not be part of it",
                            ));
                        }
                        other => {
                            return Err(syn::Error::new_spanned(
                                other,
                                "#[rc::cache] needs a plain identifier for each argument \
                                 (it is part of the cache key); bind the argument to a name \
                                 and destructure it in the body",
                            ));
                        }
                    };
                    inputs.push(Arg {
                        typed: t.clone(),
                        ident,
                        skipped: false,
                    });
                }
            }
        }

        for s in &args.skip {
            if s == "self" {
                return Err(syn::Error::new_spanned(
                    s,
                    "`self` is never part of the key unless `include_self = true`; no need to skip it",
                ));
            }
            match inputs.iter_mut().find(|a| a.ident == *s) {
                Some(a) => a.skipped = true,
                None => {
                    let names: Vec<String> = inputs.iter().map(|a| a.ident.to_string()).collect();
                    let known = if names.is_empty() {
                        "it has none".to_owned()
                    } else {
                        format!("its arguments are: {}", names.join(", "))
                    };
                    return Err(syn::Error::new_spanned(
                        s,
                        format!(
                            "cannot skip `{s}`: `{}` has no argument named `{s}` ({known})",
                            sig.ident
                        ),
                    ));
                }
            }
        }

        if let Some(flag) = &args.include_self
            && flag.value
            && receiver.is_none()
        {
            return Err(syn::Error::new_spanned(
                flag,
                format!(
                    "`include_self = true` needs a method: `{}` has no `self` argument",
                    sig.ident
                ),
            ));
        }

        let ret: Type = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let result_ok = result_ok_type(&ret);
        let is_async = sig.asyncness.is_some();
        Ok(Cached {
            args,
            func,
            receiver,
            inputs,
            ret,
            result_ok,
            is_async,
        })
    }

    fn generate(&self) -> TokenStream {
        let wrapper = self.wrapper();
        let invalidate = self.invalidate_fn();
        let batch = self.batch_fn();
        quote!(#wrapper #invalidate #batch)
    }

    fn name(&self) -> &Ident {
        &self.func.sig.ident
    }

    /// `{ let mut k = KeyBuilder::new(..); k.arg(..); ..; k.finish() }`.
    /// `self_expr` is how to reach `self` for `include_self`.
    fn key_expr(&self, self_expr: Option<TokenStream>) -> TokenStream {
        let k = Ident::new("__rc_k", Span::mixed_site());
        let prefix = match &self.args.key_prefix {
            Some(p) => quote!(::core::option::Option::Some(#p)),
            None => quote!(::core::option::Option::None),
        };
        let name = self.name().to_string();
        let mut pushes = Vec::new();
        if self.args.include_self()
            && let Some(s) = self_expr
        {
            let span = self
                .receiver
                .as_ref()
                .map_or_else(Span::call_site, |r| r.self_token.span);
            pushes.push(quote_spanned!(span=> #k.arg(::rc::__private::key_arg(#s));));
        }
        for arg in self.inputs.iter().filter(|a| !a.skipped) {
            let ident = &arg.ident;
            let span = ident.span();
            // `&*x` for `x: &T`, so that a missing `Display` names `T`, not `&T`.
            let value = if matches!(&*arg.typed.ty, Type::Reference(_)) {
                quote_spanned!(span=> &*#ident)
            } else {
                quote_spanned!(span=> &#ident)
            };
            pushes.push(quote_spanned!(span=> #k.arg(::rc::__private::key_arg(#value));));
        }
        let new = quote!(::rc::__private::KeyBuilder::new(#prefix, ::core::module_path!(), #name));
        if pushes.is_empty() {
            quote!(::rc::__private::KeyBuilder::finish(#new))
        } else {
            quote!({
                let mut #k = #new;
                #(#pushes)*
                ::rc::__private::KeyBuilder::finish(#k)
            })
        }
    }

    /// How `include_self` reaches a `Display` value from the receiver `r`.
    fn self_key_expr(r: &Receiver) -> TokenStream {
        let self_token = &r.self_token;
        let span = self_token.span;
        let by_value = r.reference.is_none()
            && (r.colon_token.is_none()
                || matches!(&*r.ty, Type::Path(p) if p.path.is_ident("Self")));
        if by_value {
            quote_spanned!(span=> &#self_token)
        } else {
            quote_spanned!(span=> &*#self_token)
        }
    }

    fn expire_expr(&self) -> TokenStream {
        match &self.args.expire {
            Some(e) => quote!(::core::option::Option::Some(::core::time::Duration::from_secs(#e))),
            None => quote!(::core::option::Option::None),
        }
    }

    /// Statements binding the cache, and the `Option<&Cache>` expression.
    fn cache_binding(&self) -> (TokenStream, TokenStream) {
        let cache = Ident::new("__rc_cache", Span::mixed_site());
        match &self.args.cache {
            Some(expr) => {
                let ty = if self.is_async {
                    quote!(::rc::AsyncCache)
                } else {
                    quote!(::rc::Cache)
                };
                let borrow = reference_to(expr);
                (
                    quote!(let #cache: &#ty = #borrow;),
                    quote!(::core::option::Option::Some(#cache)),
                )
            }
            None => {
                let default = if self.is_async {
                    quote!(::rc::__private::default_async_cache())
                } else {
                    quote!(::rc::__private::default_cache())
                };
                (quote!(let #cache = #default;), quote!(#cache.get()))
            }
        }
    }

    /// `assert_cacheable::<T>()` spanned on the cached type, so that a type
    /// without `Serialize`/`Deserialize` is reported there.
    fn assert_cacheable(&self) -> TokenStream {
        let ty = match &self.result_ok {
            Some(Some(ok)) => ok,
            Some(None) => return TokenStream::new(),
            None => &self.ret,
        };
        if matches!(self.func.sig.output, ReturnType::Default) {
            return TokenStream::new();
        }
        let span = ty.span();
        quote_spanned!(span=> ::rc::__private::assert_cacheable::<#ty>();)
    }

    /// The body as a closure (sync) or an `async move` block (async).
    fn deferred_body(&self) -> TokenStream {
        let block: &Block = &self.func.block;
        let explicit_ret = matches!(self.func.sig.output, ReturnType::Type(..));
        let ret = &self.ret;
        if self.is_async {
            // An async block cannot name its output type; this unreachable
            // `return` tells inference what it is, so `?` in the body works
            // exactly as in the original `async fn`.
            let fake = if explicit_ret {
                let fake_ident = Ident::new("__rc_ret", Span::mixed_site());
                quote!(
                    #[allow(
                        unknown_lints,
                        unreachable_code,
                        clippy::diverging_sub_expression,
                        clippy::empty_loop,
                        clippy::let_unit_value,
                        clippy::needless_return,
                        clippy::unreachable
                    )]
                    if false {
                        let #fake_ident: #ret = loop {};
                        return #fake_ident;
                    }
                )
            } else {
                TokenStream::new()
            };
            // The statements are spliced (not nested as `{ #block }`) so that
            // `unused_braces` does not fire on the user's body.
            let stmts = &block.stmts;
            quote!(async move { #fake #(#stmts)* })
        } else if explicit_ret {
            quote!(move || -> #ret #block)
        } else {
            quote!(move || #block)
        }
    }

    /// The path of a runtime function, `base` + `_async` / `_result` as
    /// needed, with the cached type given explicitly (`call::<Post, _>`):
    /// rustc then reports an unsatisfied `T: Cacheable` on that type, which is
    /// the user's return type token, with the same span and predicate as
    /// [`Self::assert_cacheable`], so the error is shown once.
    ///
    /// Relies on the runtime's generic parameter order: `T` first after the
    /// lifetime, then `E` for `_result`, then the body's type.
    fn runtime_fn(&self, base: &str) -> TokenStream {
        let mut name = base.to_owned();
        if self.is_async {
            name.push_str("_async");
        }
        if self.result_ok.is_some() {
            name.push_str("_result");
        }
        let ident = Ident::new(&name, Span::call_site());
        let cached = match (&self.func.sig.output, &self.result_ok) {
            (ReturnType::Default, _) | (_, Some(None)) => None,
            (_, Some(Some(ok))) => Some(ok),
            (_, None) => Some(&self.ret),
        };
        match cached {
            Some(t) if self.result_ok.is_some() => quote!(::rc::__private::#ident::<#t, _, _>),
            Some(t) => quote!(::rc::__private::#ident::<#t, _>),
            None => quote!(::rc::__private::#ident),
        }
    }

    /// The decorated function itself: same signature, cached body.
    fn wrapper(&self) -> TokenStream {
        let ItemFn {
            attrs, vis, sig, ..
        } = &self.func;
        let key_ident = Ident::new("__rc_key", Span::mixed_site());
        let key = self.key_expr(self.receiver.as_ref().map(Self::self_key_expr));
        let (cache_lets, cache) = self.cache_binding();
        let expire = self.expire_expr();
        let assert = self.assert_cacheable();
        let body = self.deferred_body();
        let call = self.runtime_fn("call");
        let invoke = if self.is_async {
            quote!(#call(#cache, #key_ident, #expire, #body).await)
        } else {
            quote!(#call(#cache, #key_ident, #expire, #body))
        };
        quote!(
            #(#attrs)*
            #vis #sig {
                #assert
                let #key_ident: ::std::string::String = #key;
                #cache_lets
                #invoke
            }
        )
    }

    /// Lints about a signature allowed on the generated functions: their
    /// signatures mirror the user's, who sees these lints on the original already.
    fn signature_lints() -> TokenStream {
        quote!(
            clippy::too_many_arguments,
            clippy::ptr_arg,
            clippy::type_complexity,
            clippy::needless_pass_by_value,
            clippy::trivially_copy_pass_by_ref
        )
    }

    /// Attributes copied from the decorated function to the generated ones.
    fn sibling_attrs(&self) -> Vec<&Attribute> {
        self.func
            .attrs
            .iter()
            .filter(|a| {
                let p = a.path();
                p.is_ident("cfg")
                    || p.is_ident("allow")
                    || p.is_ident("deprecated")
                    || (p.is_ident("doc") && a.to_token_stream().to_string().contains("hidden"))
            })
            .collect()
    }

    /// `invalidate_<fn>`: same arguments (a `&self` receiver for methods),
    /// deletes the cached value.
    fn invalidate_fn(&self) -> TokenStream {
        let attrs = self.sibling_attrs();
        let lints = Self::signature_lints();
        let vis: &Visibility = &self.func.vis;
        let sig = &self.func.sig;
        let name = format_ident!("invalidate_{}", sig.ident);
        let generics = &sig.generics;
        let where_clause = &sig.generics.where_clause;
        let receiver = self.receiver.as_ref().map(|r| {
            let self_token = &r.self_token;
            quote!(&#self_token,)
        });
        let params = self.inputs.iter().map(|a| {
            let mut typed = a.typed.clone();
            if let Pat::Ident(p) = &mut *typed.pat {
                p.mutability = None;
            }
            quote!(#typed)
        });
        let unused = self.inputs.iter().filter(|a| a.skipped).map(|a| {
            let ident = &a.ident;
            quote!(let _ = &#ident;)
        });
        let self_expr = self.receiver.as_ref().map(|r| {
            let self_token = &r.self_token;
            let span = self_token.span;
            quote_spanned!(span=> &*#self_token)
        });
        let key = self.key_expr(self_expr);
        let key_ident = Ident::new("__rc_key", Span::mixed_site());
        let (cache_lets, cache) = self.cache_binding();
        let doc = format!(
            " Deletes the value cached by `{}` for these arguments; `true` if one was deleted.\n\n \
             Generated by `#[rc::cache]`. Redis errors are logged and counted, and give `false`.",
            sig.ident
        );
        let (asyncness, invoke) = if self.is_async {
            (
                quote!(async),
                quote!(::rc::__private::invalidate_async(#cache, #key_ident).await),
            )
        } else {
            (
                TokenStream::new(),
                quote!(::rc::__private::invalidate(#cache, #key_ident)),
            )
        };
        quote!(
            #(#attrs)*
            #[doc = #doc]
            #[allow(#lints)]
            #vis #asyncness fn #name #generics(#receiver #(#params),*) -> bool #where_clause {
                #(#unused)*
                let #key_ident: ::std::string::String = #key;
                #cache_lets
                #invoke
            }
        )
    }

    /// `batch_<fn>`: records the call in a batch and returns its promise.
    fn batch_fn(&self) -> TokenStream {
        let attrs = self.sibling_attrs();
        let lints = Self::signature_lints();
        let vis: &Visibility = &self.func.vis;
        let sig: &Signature = &self.func.sig;
        let name = format_ident!("batch_{}", sig.ident);
        let unsafety = &sig.unsafety;
        let rc = lifetimes::batch_lifetime();

        let mut outlives = Outlives::default();
        let receiver = self.receiver.as_ref().map(|r| {
            let mut r = r.clone();
            if let Some((_, lifetime)) = &mut r.reference
                && lifetime.is_none()
            {
                *lifetime = Some(rc.clone());
            }
            lifetimes::rewrite_arg_type(&mut r.ty);
            if let Some((_, Some(l))) = &r.reference {
                outlives.collect(&syn::parse_quote!(&#l ()));
            }
            if r.colon_token.is_some() {
                outlives.collect(&r.ty);
            }
            quote!(#r,)
        });
        let params: Vec<TokenStream> = self
            .inputs
            .iter()
            .map(|a| {
                let mut typed = a.typed.clone();
                lifetimes::rewrite_arg_type(&mut typed.ty);
                outlives.collect(&typed.ty);
                quote!(#typed)
            })
            .collect();
        outlives.collect(&self.ret);
        let mut generics = sig.generics.clone();
        lifetimes::add_batch_bounds(&mut generics, &outlives, self.receiver.is_some());
        let where_clause = &generics.where_clause;

        let batch_name = if self.inputs.iter().any(|a| a.ident == "batch") {
            "__rc_batch"
        } else {
            "batch"
        };
        let batch = Ident::new(batch_name, Span::mixed_site());
        let batch_ty = if self.is_async {
            quote!(::rc::AsyncBatch<#rc>)
        } else {
            quote!(::rc::Batch<#rc>)
        };
        let ret = &self.ret;
        let key_ident = Ident::new("__rc_key", Span::mixed_site());
        let key = self.key_expr(self.receiver.as_ref().map(Self::self_key_expr));
        let expire = self.expire_expr();
        let assert = self.assert_cacheable();
        let body = self.deferred_body();
        let call = self.runtime_fn("batch_call");
        let doc = format!(
            " Records a call of `{}` in `batch` and returns its promise, resolved when the \
             batch runs: one multi-get for all recorded calls, then the misses are computed \
             and stored.\n\n Generated by `#[rc::cache]`. The batch's own cache is used.",
            sig.ident
        );
        quote!(
            #(#attrs)*
            #[doc = #doc]
            #[allow(#lints)]
            #vis #unsafety fn #name #generics(
                #receiver
                #batch: &#batch_ty,
                #(#params),*
            ) -> ::rc::Promise<#ret> #where_clause {
                #assert
                let #key_ident: ::std::string::String = #key;
                #call(#batch, #key_ident, #expire, #body)
            }
        )
    }
}

/// `&EXPR` with the `&` spanned on the expression, so that a type mismatch is
/// reported on the user's expression. Parenthesized when precedence needs it.
fn reference_to(expr: &Expr) -> TokenStream {
    let span = expr
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span());
    let needs_parens = !matches!(
        expr,
        Expr::Path(_)
            | Expr::Field(_)
            | Expr::Call(_)
            | Expr::MethodCall(_)
            | Expr::Index(_)
            | Expr::Paren(_)
            | Expr::Macro(_)
            | Expr::Block(_)
            | Expr::Tuple(_)
            | Expr::Array(_)
            | Expr::Lit(_)
            | Expr::Reference(_)
            | Expr::Unary(_)
            | Expr::Try(_)
            | Expr::Await(_)
    );
    if needs_parens {
        quote_spanned!(span=> &(#expr))
    } else {
        quote_spanned!(span=> &#expr)
    }
}

/// For a return type whose last path segment is `Result`: `Some(Some(T))`
/// with the first generic argument, `Some(None)` for a `Result` alias without
/// arguments. `None` for any other type.
fn result_ok_type(ty: &Type) -> Option<Option<Type>> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => Some(a.args.iter().find_map(|g| match g {
            syn::GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })),
        _ => Some(None),
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Find(bool);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Find(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands and returns the code as text, for inspection and checks.
    fn expand_str(attr: &str, item: &str) -> String {
        expand(attr.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn expansion_shape() {
        // `cargo test -p rc-macros --lib -- --nocapture expansion_shape` prints it.
        let out = expand_str(
            "expire = 3600, key_prefix = \"v2\"",
            "pub fn load(name: &str, offset: u32) -> Post { body(name, offset) }",
        );
        println!("{out}");
        for want in [
            ":: rc :: __private :: KeyBuilder :: new (:: core :: option :: Option :: Some (\"v2\") , :: core :: module_path ! () , \"load\")",
            "key_arg (& * name)",
            "key_arg (& offset)",
            ":: rc :: __private :: call :: < Post , _ > (__rc_cache . get () , __rc_key , :: core :: option :: Option :: Some (:: core :: time :: Duration :: from_secs (3600)) , move || -> Post { body (name , offset) })",
            "pub fn invalidate_load (name : & str , offset : u32) -> bool",
            "pub fn batch_load < '__rc > (batch : & :: rc :: Batch < '__rc > , name : & '__rc str , offset : u32) -> :: rc :: Promise < Post >",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }

        let out = expand_str(
            "include_self = true, cache = self.cache",
            "async fn get(&self, id: u32) -> Result<Vec<u8>, E> { body() }",
        );
        println!("{out}");
        for want in [
            "key_arg (& * self)",
            "let __rc_cache : & :: rc :: AsyncCache = & self . cache ;",
            "call_async_result :: < Vec < u8 > , _ , _ >",
            "async move {",
            "async fn invalidate_get (& self , id : u32) -> bool",
            "fn batch_get < '__rc > (& '__rc self , batch : & :: rc :: AsyncBatch < '__rc > , id : u32)",
            "batch_call_async_result :: < Vec < u8 > , _ , _ >",
        ] {
            assert!(out.contains(want), "missing `{want}` in {out}");
        }
    }

    #[test]
    fn batch_signature_rewrites_lifetimes() {
        let out = expand_str(
            "",
            "fn f<'a, T>(&self, a: &'a str, b: &str, c: Foo<'_>, d: T, e: impl X, g: fn(&str), h: &dyn Fn(&str), i: Box<U>) -> Out<V> {}",
        );
        let batch = &out[out.find("fn batch_f").unwrap()..];
        let sig = &batch[..batch.find("__rc_key").unwrap()];
        for want in [
            "< '__rc , 'a : '__rc , T : '__rc >",
            "& '__rc self",
            "a : & 'a str",
            "b : & '__rc str",
            "c : Foo < '__rc >",
            "e : impl X + '__rc",
            "g : fn (& str)",
            "h : & '__rc dyn Fn (& str)",
            "Self : '__rc",
            "U : '__rc",
            "V : '__rc",
        ] {
            assert!(sig.contains(want), "missing `{want}` in {sig}");
        }
        assert!(!sig.contains("Out : '__rc"), "{sig}");
    }

    #[test]
    fn batch_bounds_go_where_the_user_put_them() {
        let out = expand_str(
            "",
            "fn f<'a, 'b, T, U: X>(a: &'a T, b: &'b U) -> u8 where T: Y, 'b: 'a {}",
        );
        let batch = &out[out.find("fn batch_f").unwrap()..];
        let sig = &batch[..batch.find("__rc_key").unwrap()];
        for want in [
            "< '__rc , 'a : '__rc , 'b , T , U : X + '__rc >",
            "where T : Y + '__rc , 'b : 'a + '__rc",
        ] {
            assert!(sig.contains(want), "missing `{want}` in {sig}");
        }
    }

    #[test]
    fn errors_keep_the_item() {
        let out = expand_str("nope = 1", "fn f() {}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("fn f"), "{out}");
        assert!(!out.contains("invalidate_f"), "{out}");
    }
}
