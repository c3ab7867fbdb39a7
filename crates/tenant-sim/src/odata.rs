//! OData URL pieces shared by the Graph and Dataverse emulations: query-string decoding, key
//! segments (`applications(uniqueName='a''b')`), a small `$filter` parser (`eq`/`ne` joined by
//! `and`; `or` for Dataverse, `in` for Graph), `$select` lists and `$expand` options.
//!
//! Why hand-written: the emulator must reject what the real services reject (a quoted GUID in a
//! Dataverse filter, an unknown property) and accept what they accept (`''` escaping, percent
//! encoding, `+` for spaces in query strings), which a lenient generic parser would blur.

use percent_encoding::percent_decode_str;
use serde_json::Value;

/// Percent-decode one path segment (no `+` translation: `+` is literal in paths).
pub fn decode_path(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Decode a query-string component: `+` is a space (form encoding, as ASP.NET decodes it), then
/// percent-decoding.
pub fn decode_query(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

/// Split a raw query string into decoded `(name, value)` pairs, in order.
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode_query(k), decode_query(v)),
            None => (decode_query(p), String::new()),
        })
        .collect()
}

/// A literal value in a key or a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Guid(String),
    Num(f64),
    Bool(bool),
    /// An unquoted `Edm.DateTimeOffset` literal, `2026-12-02T10:00:00Z` (OData ABNF
    /// `dateTimeOffsetValue`).
    DateTime(String),
    Null,
}

impl Literal {
    /// The EDM type name the literal has, as OData error messages spell it.
    pub fn edm(&self) -> &'static str {
        match self {
            Literal::Str(_) => "Edm.String",
            Literal::Guid(_) => "Edm.Guid",
            Literal::Num(_) => "Edm.Int32",
            Literal::Bool(_) => "Edm.Boolean",
            Literal::DateTime(_) => "Edm.DateTimeOffset",
            Literal::Null => "null",
        }
    }
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Literal::Str(s) | Literal::Guid(s) => Some(s),
            _ => None,
        }
    }
}

pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

/// Parse one literal at the start of `s`; returns the literal and the rest.
pub fn parse_literal(s: &str) -> Result<(Literal, &str), String> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('\'') {
        // '' inside a string is an escaped quote
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if let Some((_, '\'')) = chars.peek() {
                    out.push('\'');
                    chars.next();
                    continue;
                }
                return Ok((Literal::Str(out), &rest[i + 1..]));
            }
            out.push(c);
        }
        return Err("unterminated string literal".into());
    }
    let end = s
        .find(|c: char| c.is_whitespace() || c == ')' || c == ',')
        .unwrap_or(s.len());
    let (tok, rest) = s.split_at(end);
    let lit = match tok {
        "" => return Err("missing literal".into()),
        "null" => Literal::Null,
        "true" => Literal::Bool(true),
        "false" => Literal::Bool(false),
        t if is_guid(t) => Literal::Guid(t.to_ascii_lowercase()),
        t if parse_time(t).is_some() => Literal::DateTime(t.to_string()),
        t => match t.parse::<f64>() {
            Ok(n) => Literal::Num(n),
            Err(_) => return Err(format!("unrecognized literal '{t}'")),
        },
    };
    Ok((lit, rest))
}

/// A key in parentheses after a segment name.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// `(value)`
    Single(Literal),
    /// `(name=value, ...)`
    Named(Vec<(String, Literal)>),
}

/// A decoded path segment: `name` or `name(key)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    pub key: Option<Key>,
}

/// Parse a raw (still percent-encoded) path segment into name + key. The segment is decoded
/// first, so `%27` and `%2F` inside a key are plain characters of the key.
pub fn parse_segment(raw: &str) -> Result<Segment, String> {
    let s = decode_path(raw);
    let Some(open) = s.find('(') else {
        return Ok(Segment { name: s, key: None });
    };
    if !s.ends_with(')') {
        return Err(s);
    }
    let name = s[..open].to_string();
    let inner = &s[open + 1..s.len() - 1];
    let key = parse_key(inner).map_err(|_| s.clone())?;
    Ok(Segment {
        name,
        key: Some(key),
    })
}

fn parse_key(inner: &str) -> Result<Key, String> {
    let t = inner.trim_start();
    // named form: ident '=' literal (',' ident '=' literal)*
    let ident_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    if ident_len > 0 && t[ident_len..].trim_start().starts_with('=') {
        let mut parts = Vec::new();
        let mut rest = t;
        loop {
            let rest_t = rest.trim_start();
            let il = rest_t
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest_t.len());
            let name = rest_t[..il].to_string();
            let after = rest_t[il..].trim_start();
            let after = after.strip_prefix('=').ok_or("expected =")?;
            let (lit, r) = parse_literal(after)?;
            parts.push((name, lit));
            let r = r.trim_start();
            if r.is_empty() {
                break;
            }
            rest = r.strip_prefix(',').ok_or("expected ,")?;
        }
        return Ok(Key::Named(parts));
    }
    let (lit, rest) = parse_literal(t)?;
    if !rest.trim().is_empty() {
        return Err("trailing characters in key".into());
    }
    Ok(Key::Single(lit))
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    /// `ge`, `gt`, `le`, `lt`: Dataverse only, here for date-times (query-data-web-api.md,
    /// "Comparison operators": eq, ne, gt, ge, lt, le).
    Ge,
    Gt,
    Le,
    Lt,
    /// `prop in ('a','b')` (OData 4.01); the clause's value is a [`Literal`] list.
    In,
}

/// One `prop op literal` clause; for [`Op::In`] the value is the list's first literal and
/// `list` holds them all.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub prop: String,
    pub op: Op,
    pub value: Literal,
    pub list: Vec<Literal>,
}

impl Clause {
    /// Every literal the clause compares with (one, or an `in` list).
    pub fn literals(&self) -> &[Literal] {
        if self.op == Op::In {
            &self.list
        } else {
            std::slice::from_ref(&self.value)
        }
    }
}

/// Which operators a service accepts beyond `eq`, `ne` and `and`: Dataverse also takes `or`
/// (query-data-web-api.md; on metadata too, query-schema-definitions.md: `EntityDefinitions?
/// $filter=LogicalName eq 'account' or LogicalName eq 'contact'`), Graph the `in` operator on
/// the properties whose docs list it (servicePrincipal `appId`: "Supports $filter (eq, ne, not,
/// in, startsWith)"). Anything else stays a syntax error, as it would be for the service the
/// caller meant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Syntax {
    pub or: bool,
    pub in_list: bool,
    /// `ge`/`gt`/`le`/`lt`.
    pub ordering: bool,
}

impl Syntax {
    pub const GRAPH: Syntax = Syntax {
        or: false,
        in_list: true,
        ordering: false,
    };
    pub const DATAVERSE: Syntax = Syntax {
        or: true,
        in_list: false,
        ordering: true,
    };
}

/// A parsed `$filter`: a disjunction of conjunctions (`and` binds tighter than `or`).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp(Clause),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    /// Every comparison in the filter, in order (to check properties and literal types).
    pub fn clauses(&self) -> Vec<&Clause> {
        match self {
            Filter::Cmp(c) => vec![c],
            Filter::And(v) | Filter::Or(v) => v.iter().flat_map(Filter::clauses).collect(),
        }
    }

    /// The same, to rename properties to row keys.
    pub fn clauses_mut(&mut self) -> Vec<&mut Clause> {
        match self {
            Filter::Cmp(c) => vec![c],
            Filter::And(v) | Filter::Or(v) => v.iter_mut().flat_map(Filter::clauses_mut).collect(),
        }
    }
}

/// Parse `$filter` with `eq`/`ne` comparisons joined by `and`, in parentheses or not; `or` and
/// `in` only where `syntax` allows. Anything else is an error the caller turns into the service's
/// 400.
pub fn parse_filter(s: &str, syntax: Syntax) -> Result<Filter, String> {
    let mut p = FilterParser { s, rest: s, syntax };
    let f = p.or_expr()?;
    if !p.rest.trim().is_empty() {
        return Err(p.syntax_error());
    }
    Ok(f)
}

struct FilterParser<'a> {
    s: &'a str,
    rest: &'a str,
    syntax: Syntax,
}

impl FilterParser<'_> {
    fn syntax_error(&self) -> String {
        format!(
            "Syntax error at position {} in '{}'.",
            self.s.len() - self.rest.len(),
            self.s
        )
    }

    /// Consumes `word` followed by white space, if it comes next.
    fn keyword(&mut self, word: &str) -> bool {
        let r = self.rest.trim_start();
        match r.strip_prefix(word) {
            Some(after) if after.starts_with(char::is_whitespace) => {
                self.rest = after;
                true
            }
            _ => false,
        }
    }

    fn or_expr(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.and_expr()?];
        loop {
            let before = self.rest;
            if !self.keyword("or") {
                break;
            }
            if !self.syntax.or {
                self.rest = before.trim_start();
                return Err(self.syntax_error());
            }
            parts.push(self.and_expr()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Or(parts)
        })
    }

    fn and_expr(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.primary()?];
        while self.keyword("and") {
            parts.push(self.primary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    fn primary(&mut self) -> Result<Filter, String> {
        self.rest = self.rest.trim_start();
        if let Some(r) = self.rest.strip_prefix('(') {
            self.rest = r;
            let inner = self.or_expr()?;
            self.rest = self.rest.trim_start();
            self.rest = self
                .rest
                .strip_prefix(')')
                .ok_or_else(|| format!("Syntax error: ')' expected in '{}'.", self.s))?;
            return Ok(inner);
        }
        let il = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.'))
            .unwrap_or(self.rest.len());
        if il == 0 {
            return Err(self.syntax_error());
        }
        let prop = self.rest[..il].to_string();
        self.rest = self.rest[il..].trim_start();
        let op = if let Some(r) = self.rest.strip_prefix("eq ") {
            self.rest = r;
            Op::Eq
        } else if let Some(r) = self.rest.strip_prefix("ne ") {
            self.rest = r;
            Op::Ne
        } else if let (true, Some(r)) = (self.syntax.in_list, self.rest.strip_prefix("in ")) {
            self.rest = r;
            Op::In
        } else if let Some((op, r)) = [
            ("ge ", Op::Ge),
            ("gt ", Op::Gt),
            ("le ", Op::Le),
            ("lt ", Op::Lt),
        ]
        .into_iter()
        .filter(|_| self.syntax.ordering)
        .find_map(|(w, op)| self.rest.strip_prefix(w).map(|r| (op, r)))
        {
            self.rest = r;
            op
        } else {
            return Err(format!(
                "Syntax error: unsupported operator or function near '{}' in '{}'.",
                self.rest.split_whitespace().next().unwrap_or(""),
                self.s
            ));
        };
        if op == Op::In {
            let mut r =
                self.rest.trim_start().strip_prefix('(').ok_or_else(|| {
                    format!("Syntax error: '(' expected after 'in' in '{}'.", self.s)
                })?;
            let mut list = Vec::new();
            loop {
                let (lit, after) = parse_literal(r)?;
                list.push(lit);
                let after = after.trim_start();
                if let Some(a) = after.strip_prefix(',') {
                    r = a;
                } else if let Some(a) = after.strip_prefix(')') {
                    self.rest = a;
                    break;
                } else {
                    return Err(format!("Syntax error: ')' expected in '{}'.", self.s));
                }
            }
            return Ok(Filter::Cmp(Clause {
                prop,
                op,
                value: list[0].clone(),
                list,
            }));
        }
        let (value, r) = parse_literal(self.rest)?;
        self.rest = r;
        Ok(Filter::Cmp(Clause {
            prop,
            op,
            value,
            list: Vec::new(),
        }))
    }
}

/// Does a JSON value equal a literal? Strings and GUIDs compare case-insensitively (both services
/// use case-insensitive collations for these comparisons).
pub fn value_eq(v: Option<&Value>, lit: &Literal) -> bool {
    match (v, lit) {
        (None | Some(Value::Null), Literal::Null) => true,
        (Some(Value::String(a)), Literal::Str(b) | Literal::Guid(b)) => a.eq_ignore_ascii_case(b),
        (Some(Value::Bool(a)), Literal::Bool(b)) => a == b,
        (Some(Value::Number(a)), Literal::Num(b)) => a.as_f64() == Some(*b),
        _ => false,
    }
}

/// Evaluate a filter against an object.
pub fn matches(obj: &Value, f: &Filter) -> bool {
    match f {
        Filter::Cmp(c) => {
            let v = obj.get(&c.prop);
            match c.op {
                Op::Eq => value_eq(v, &c.value),
                Op::Ne => !value_eq(v, &c.value),
                Op::In => c.list.iter().any(|l| value_eq(v, l)),
                Op::Ge | Op::Gt | Op::Le | Op::Lt => {
                    let ord = match (v.and_then(Value::as_str).and_then(parse_time), &c.value) {
                        (Some(a), Literal::DateTime(b)) => parse_time(b).map(|b| a.cmp(&b)),
                        _ => None,
                    };
                    match (ord, c.op) {
                        (Some(o), Op::Ge) => o.is_ge(),
                        (Some(o), Op::Gt) => o.is_gt(),
                        (Some(o), Op::Le) => o.is_le(),
                        (Some(o), Op::Lt) => o.is_lt(),
                        _ => false,
                    }
                }
            }
        }
        Filter::And(v) => v.iter().all(|x| matches(obj, x)),
        Filter::Or(v) => v.iter().any(|x| matches(obj, x)),
    }
}

/// An RFC 3339 date-time, as Dataverse writes `createdon` and reads date-time literals.
pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Split a `$select` list.
pub fn parse_select(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// One `$expand` item: `nav($select=a,b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    pub nav: String,
    pub select: Option<Vec<String>>,
    pub filter: Option<String>,
}

/// Parse `$expand` (top-level comma list; nested options separated by `;`).
pub fn parse_expand(s: &str) -> Result<Vec<Expand>, String> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let bytes: Vec<char> = s.chars().collect();
    let mut cur = String::new();
    for (i, c) in bytes.iter().enumerate() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut cur));
                start = i + 1;
                continue;
            }
            _ => {}
        }
        cur.push(*c);
    }
    let _ = start;
    if depth != 0 {
        return Err(format!("unbalanced parentheses in $expand '{s}'"));
    }
    items.push(cur);
    let mut out = Vec::new();
    for it in items
        .into_iter()
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
    {
        let (nav, opts) = match it.find('(') {
            Some(p) if it.ends_with(')') => (
                it[..p].to_string(),
                Some(it[p + 1..it.len() - 1].to_string()),
            ),
            Some(_) => return Err(format!("bad $expand item '{it}'")),
            None => (it.clone(), None),
        };
        let mut e = Expand {
            nav,
            select: None,
            filter: None,
        };
        if let Some(opts) = opts {
            for o in opts.split(';') {
                let o = o.trim();
                if let Some(v) = o.strip_prefix("$select=") {
                    e.select = Some(parse_select(v));
                } else if let Some(v) = o.strip_prefix("$filter=") {
                    e.filter = Some(v.to_string());
                } else if !o.is_empty() {
                    return Err(format!("unsupported $expand option '{o}'"));
                }
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// Keep only the selected keys (plus OData annotations) of an object.
pub fn project(obj: &Value, select: &[String], always: &[&str]) -> Value {
    let Value::Object(m) = obj else {
        return obj.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        if k.starts_with('@') || select.iter().any(|s| s == k) || always.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// [`project`] when the request has a `$select`, the whole object when it has none.
pub fn select(obj: &Value, select: Option<&[String]>, always: &[&str]) -> Value {
    match select {
        Some(s) => project(obj, s, always),
        None => obj.clone(),
    }
}

/// The request's query string without its `$skiptoken`, as the start of the next page's link:
/// empty, or the kept options followed by `&`.
pub fn query_before_skiptoken(raw_query: Option<&str>) -> String {
    let kept: Vec<&str> = raw_query
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            !p.is_empty() && !p.starts_with("$skiptoken=") && !p.starts_with("%24skiptoken=")
        })
        .collect();
    let mut q = kept.join("&");
    if !q.is_empty() {
        q.push('&');
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_with_escaped_quote_and_percent() {
        let seg = parse_segment("applications(uniqueName='a''b%25c%23d%2Fe')").expect("parse");
        assert_eq!(seg.name, "applications");
        assert_eq!(
            seg.key,
            Some(Key::Named(vec![(
                "uniqueName".into(),
                Literal::Str("a'b%c#d/e".into())
            )]))
        );
        let seg = parse_segment("roles(0a1b2c3d-0000-0000-0000-00000000000A)").expect("parse");
        assert_eq!(
            seg.key,
            Some(Key::Single(Literal::Guid(
                "0a1b2c3d-0000-0000-0000-00000000000a".into()
            )))
        );
        assert!(parse_segment("applications(uniqueName='x)").is_err());
        let seg = parse_segment("EntityDefinitions(LogicalName='lead')").expect("parse");
        assert_eq!(seg.name, "EntityDefinitions");
    }

    #[test]
    fn filter_parser() {
        let dv = Syntax::DATAVERSE;
        let f = parse_filter("name eq 'Marketo Sync User' and _businessunitid_value eq 5b3f6a2e-1111-2222-3333-444455556666", dv)
            .expect("parse");
        assert_eq!(f.clauses().len(), 2);
        let c = f.clauses();
        assert_eq!(c[0].value, Literal::Str("Marketo Sync User".into()));
        assert!(matches!(c[1].value, Literal::Guid(_)));
        let f = parse_filter("displayName eq 'it''s 100% #1/2'", Syntax::GRAPH).expect("parse");
        assert_eq!(f.clauses()[0].value, Literal::Str("it's 100% #1/2".into()));
        let f = parse_filter("(parentbusinessunitid eq null)", dv).expect("parse");
        assert_eq!(f.clauses()[0].value, Literal::Null);
        assert!(parse_filter("startswith(displayName,'a')", dv).is_err());
        let f = parse_filter("createdon ge 2026-12-02T10:00:00Z", dv).unwrap();
        assert!(matches(
            &serde_json::json!({"createdon": "2026-12-02T10:00:01Z"}),
            &f
        ));
        assert!(!matches(
            &serde_json::json!({"createdon": "2026-12-02T09:59:59Z"}),
            &f
        ));
        assert!(parse_filter("createdon ge 2026-12-02T10:00:00Z", Syntax::GRAPH).is_err());
        assert!(parse_filter("a eq 'unterminated", dv).is_err());
        let obj = serde_json::json!({"name":"Marketo Sync User","x":null,"n":4,"b":true});
        assert!(matches(
            &obj,
            &parse_filter(
                "name eq 'marketo sync user' and x eq null and n eq 4 and b eq true",
                dv
            )
            .expect("p")
        ));
        assert!(!matches(
            &obj,
            &parse_filter("name ne 'Marketo Sync User'", dv).expect("p")
        ));
    }

    #[test]
    fn or_only_where_the_service_takes_it() {
        // Graph: `or` is a syntax error here; Dataverse: `and` binds tighter.
        assert!(parse_filter("a eq 'x' or b eq 'y'", Syntax::GRAPH).is_err());
        let f = parse_filter("n eq 1 and b eq true or n eq 2", Syntax::DATAVERSE).expect("p");
        assert_eq!(f.clauses().len(), 3);
        let m = |o: serde_json::Value| matches(&o, &f);
        assert!(m(serde_json::json!({"n": 1, "b": true})));
        assert!(!m(serde_json::json!({"n": 1, "b": false})));
        assert!(m(serde_json::json!({"n": 2, "b": false})));
        let g = parse_filter("(n eq 1 or n eq 2) and b eq true", Syntax::DATAVERSE).expect("p");
        assert!(!matches(&serde_json::json!({"n": 2, "b": false}), &g));
        assert!(matches(&serde_json::json!({"n": 2, "b": true}), &g));
        // A name that merely starts with "or" is a property, not the operator.
        let h = parse_filter("order eq 1", Syntax::DATAVERSE).expect("p");
        assert_eq!(h.clauses()[0].prop, "order");
        assert!(parse_filter("a eq 1 or", Syntax::DATAVERSE).is_err());
    }

    #[test]
    fn in_lists_only_for_graph() {
        let f = parse_filter("appId in ('a', 'B')", Syntax::GRAPH).expect("p");
        assert_eq!(f.clauses()[0].op, Op::In);
        assert_eq!(f.clauses()[0].literals().len(), 2);
        assert!(matches(&serde_json::json!({"appId": "b"}), &f));
        assert!(!matches(&serde_json::json!({"appId": "c"}), &f));
        assert!(parse_filter("appId in ('a', 'b')", Syntax::DATAVERSE).is_err());
        assert!(parse_filter("appId in ('a'", Syntax::GRAPH).is_err());
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("%24filter=displayName+eq+%27a%2Bb%27&$top=5"));
        assert_eq!(q[0], ("$filter".into(), "displayName eq 'a+b'".into()));
        assert_eq!(q[1], ("$top".into(), "5".into()));
    }

    #[test]
    fn expand_parser() {
        let e =
            parse_expand("systemuserroles_association($select=roleid,name,_businessunitid_value)")
                .expect("p");
        assert_eq!(e[0].nav, "systemuserroles_association");
        assert_eq!(e[0].select.as_ref().map(Vec::len), Some(3));
    }
}
