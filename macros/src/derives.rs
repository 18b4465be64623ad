//! `#[derive(Signal)]` and `#[derive(Query)]`: the trait impls a workflow
//! author would otherwise write by hand, with the name taken from an
//! attribute or from the type.
//!
//! A name is what a signal is sent and recorded under, and what a query is
//! asked under: it lives in histories and in other programs' requests, so
//! it is spelled out once, next to the type, and checked here (not empty,
//! a string literal) rather than discovered at run time.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, LitStr, Type};

/// Which derive is expanding, for its messages.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Signal,
    Query,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Signal => "signal",
            Kind::Query => "query",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Signal => "a signal",
            Kind::Query => "a query",
        }
    }
}

/// What the `#[signal(..)]` / `#[query(..)]` attributes said.
#[derive(Default)]
struct Attrs {
    name: Option<LitStr>,
    args: Option<Type>,
    result: Option<Type>,
}

/// Expands one derive, or returns its errors as tokens.
pub(crate) fn derive(kind: Kind, input: DeriveInput) -> TokenStream2 {
    match expand(kind, &input) {
        Ok(tokens) => tokens,
        Err(err) => err.to_compile_error(),
    }
}

fn expand(kind: Kind, input: &DeriveInput) -> syn::Result<TokenStream2> {
    if let Data::Union(u) = &input.data {
        return Err(syn::Error::new(
            u.union_token.span,
            format!(
                "#[derive({})] goes on a struct or an enum, not a union",
                derive_name(kind)
            ),
        ));
    }
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            format!(
                "{} type cannot be generic: it has one name, `{}::NAME`, so each of its \
                 instantiations would share it; declare one type per {}",
                kind.noun(),
                input.ident,
                kind.attr()
            ),
        ));
    }
    let attrs = parse_attrs(kind, input)?;
    let ident = &input.ident;
    let name = match &attrs.name {
        Some(name) => name.value(),
        None => kebab_case(&ident.to_string()),
    };
    match kind {
        Kind::Signal => Ok(quote! {
            impl ::refrain::Signal for #ident {
                const NAME: &'static str = #name;
            }
        }),
        Kind::Query => {
            let Some(result) = &attrs.result else {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "#[derive(Query)] needs the type the query answers with: add \
                         `#[query(result = T)]` above `{ident}` (and `args = A` if callers pass \
                         arguments; without it they pass `()`)"
                    ),
                ));
            };
            let args = match &attrs.args {
                Some(args) => quote!(#args),
                None => quote!(()),
            };
            Ok(quote! {
                impl ::refrain::Query for #ident {
                    const NAME: &'static str = #name;
                    type Args = #args;
                    type Result = #result;
                }
            })
        }
    }
}

fn parse_attrs(kind: Kind, input: &DeriveInput) -> syn::Result<Attrs> {
    let mut attrs = Attrs::default();
    for attr in &input.attrs {
        if !attr.path().is_ident(kind.attr()) {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let name: LitStr = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        format!(
                            "the name of {} is a string literal: `name = \"approval\"`",
                            kind.noun()
                        ),
                    )
                })?;
                if name.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        format!(
                            "the name of {} cannot be empty: it is what callers send and \
                             histories record",
                            kind.noun()
                        ),
                    ));
                }
                attrs.name = Some(name);
                return Ok(());
            }
            if let Kind::Query = kind {
                if meta.path.is_ident("result") {
                    attrs.result = Some(meta.value()?.parse()?);
                    return Ok(());
                }
                if meta.path.is_ident("args") {
                    attrs.args = Some(meta.value()?.parse()?);
                    return Ok(());
                }
            }
            let known = match kind {
                Kind::Signal => "`name = \"..\"`",
                Kind::Query => "`name = \"..\"`, `result = T` and `args = A`",
            };
            Err(meta.error(format!(
                "unknown key in #[{}(..)]: it takes {known}",
                kind.attr()
            )))
        })?;
    }
    Ok(attrs)
}

fn derive_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Signal => "Signal",
        Kind::Query => "Query",
    }
}

/// `StockResolved` → `stock-resolved`, `HTTPRequest` → `http-request`,
/// `Approve2FA` → `approve2-fa`: a hyphen where a lower-case letter or digit
/// meets an upper-case one, and before the last capital of a run of
/// capitals followed by a lower-case letter.
pub(crate) fn kebab_case(ident: &str) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary =
                prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower);
            if boundary && !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::kebab_case;

    #[test]
    fn type_names_become_kebab_case_names() {
        for (ident, name) in [
            ("StockResolved", "stock-resolved"),
            ("ManagerApproval", "manager-approval"),
            ("Approve", "approve"),
            ("HTTPRequest", "http-request"),
            ("Approve2FA", "approve2-fa"),
            ("Snake_Case", "snake-case"),
            ("r#Type", "type"),
        ] {
            assert_eq!(kebab_case(ident), name, "{ident}");
        }
    }
}
