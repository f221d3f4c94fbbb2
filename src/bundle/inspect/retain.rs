//! What keeps each function in a module, twiggy-style: the call graph from the module's roots
//! (exports, the start function, the function table, `ref.func` in globals), its dominator tree,
//! and each function's retained size — the bytes that would go if it went.

use anyhow::{Context, Result};
use wasmparser::{ElementItems, ExternalKind, Operator, Parser, Payload};

/// Who keeps a function: a root of the module, or the function that dominates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeper {
    /// Exported, started, or reached from several roots.
    Roots,
    /// Only through the function table (`call_indirect`).
    Table,
    /// Every path to it goes through this function (index in the function index space).
    Function(u32),
    /// Nothing reaches it (a shaken module has none).
    Unreachable,
}

/// Per function in the index space (imports first): its retained bytes and its keeper.
pub struct Retention {
    pub retained_bytes: Vec<u64>,
    pub keepers: Vec<Keeper>,
}

const ROOT: usize = 0;
const TABLE: usize = 1;
const FIRST_FUNCTION: usize = 2;

/// Builds the call graph of `wasm`, where `imported` functions come first and `bodies` holds each
/// defined function's body size, and computes who retains what.
pub fn retention(wasm: &[u8], imported: u32, bodies: &[u64]) -> Result<Retention> {
    let functions = imported as usize + bodies.len();
    let nodes = FIRST_FUNCTION + functions;
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    edges[ROOT].push(TABLE);
    let node = |index: u32| FIRST_FUNCTION + index as usize;
    let mut body_index = imported;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("parsing the module")? {
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.context("reading exports")?;
                    if export.kind == ExternalKind::Func {
                        edges[ROOT].push(node(export.index));
                    }
                }
            }
            Payload::StartSection { func, .. } => edges[ROOT].push(node(func)),
            Payload::ElementSection(reader) => {
                for element in reader {
                    let element = element.context("reading elements")?;
                    match element.items {
                        ElementItems::Functions(indices) => {
                            for index in indices {
                                edges[TABLE].push(node(index.context("reading elements")?));
                            }
                        }
                        ElementItems::Expressions(_, expressions) => {
                            for expression in expressions {
                                let expression = expression.context("reading elements")?;
                                for op in expression.get_operators_reader() {
                                    if let Operator::RefFunc { function_index } =
                                        op.context("reading elements")?
                                    {
                                        edges[TABLE].push(node(function_index));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let global = global.context("reading globals")?;
                    for op in global.init_expr.get_operators_reader() {
                        if let Operator::RefFunc { function_index } =
                            op.context("reading globals")?
                        {
                            edges[ROOT].push(node(function_index));
                        }
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let from = node(body_index);
                body_index += 1;
                for op in body
                    .get_operators_reader()
                    .context("reading a function body")?
                {
                    match op.context("reading a function body")? {
                        Operator::Call { function_index }
                        | Operator::ReturnCall { function_index }
                        | Operator::RefFunc { function_index } => {
                            edges[from].push(node(function_index))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    for targets in &mut edges {
        targets.retain(|&t| t < nodes);
        targets.sort_unstable();
        targets.dedup();
    }
    let idom = dominators(&edges);

    let mut sizes = vec![0u64; nodes];
    for (i, bytes) in bodies.iter().enumerate() {
        sizes[node(imported + i as u32)] = *bytes;
    }
    // Children come after their dominator in reverse postorder: add sizes up from the back.
    let order = reverse_postorder(&edges);
    let mut retained = sizes.clone();
    for &n in order.iter().rev() {
        if let Some(d) = idom[n].filter(|&d| d != n) {
            retained[d] += retained[n];
        }
    }
    let keepers = (0..functions)
        .map(|f| match idom[FIRST_FUNCTION + f] {
            None => Keeper::Unreachable,
            Some(ROOT) => Keeper::Roots,
            Some(TABLE) => Keeper::Table,
            Some(d) => Keeper::Function((d - FIRST_FUNCTION) as u32),
        })
        .collect();
    Ok(Retention {
        retained_bytes: retained[FIRST_FUNCTION..].to_vec(),
        keepers,
    })
}

fn reverse_postorder(edges: &[Vec<usize>]) -> Vec<usize> {
    let mut visited = vec![false; edges.len()];
    let mut postorder = Vec::with_capacity(edges.len());
    // Iterative DFS: (node, next edge to follow).
    let mut stack = vec![(ROOT, 0)];
    visited[ROOT] = true;
    while let Some((n, next)) = stack.pop() {
        if let Some(&target) = edges[n].get(next) {
            stack.push((n, next + 1));
            if !visited[target] {
                visited[target] = true;
                stack.push((target, 0));
            }
        } else {
            postorder.push(n);
        }
    }
    postorder.reverse();
    postorder
}

/// Immediate dominators from `ROOT` (Cooper, Harvey and Kennedy, "A Simple, Fast Dominance
/// Algorithm"); `None` for nodes `ROOT` does not reach, `Some(ROOT)` for `ROOT` itself.
fn dominators(edges: &[Vec<usize>]) -> Vec<Option<usize>> {
    let order = reverse_postorder(edges);
    let mut rank = vec![usize::MAX; edges.len()];
    for (i, &n) in order.iter().enumerate() {
        rank[n] = i;
    }
    let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); edges.len()];
    for (from, targets) in edges.iter().enumerate() {
        if rank[from] != usize::MAX {
            for &to in targets {
                predecessors[to].push(from);
            }
        }
    }
    let mut idom: Vec<Option<usize>> = vec![None; edges.len()];
    idom[ROOT] = Some(ROOT);
    let intersect = |idom: &[Option<usize>], mut a: usize, mut b: usize| {
        while a != b {
            while rank[a] > rank[b] {
                a = idom[a].expect("processed nodes have a dominator");
            }
            while rank[b] > rank[a] {
                b = idom[b].expect("processed nodes have a dominator");
            }
        }
        a
    };
    let mut changed = true;
    while changed {
        changed = false;
        for &n in order.iter().skip(1) {
            let mut new_idom = None;
            for &p in &predecessors[n] {
                if idom[p].is_some() {
                    new_idom = Some(match new_idom {
                        None => p,
                        Some(current) => intersect(&idom, p, current),
                    });
                }
            }
            if new_idom.is_some() && idom[n] != new_idom {
                idom[n] = new_idom;
                changed = true;
            }
        }
    }
    idom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominators_of_a_diamond_and_a_chain() {
        // root → a, b; a → c; b → c; c → d
        let edges = vec![vec![1, 2], vec![3], vec![3], vec![4], vec![]];
        let idom = dominators(&edges);
        assert_eq!(idom, [Some(0), Some(0), Some(0), Some(0), Some(3)]);
    }

    #[test]
    fn helpers_only_one_function_calls_are_retained_by_it() {
        let wasm = wat::parse_str(
            r#"(module
                (table 1 funcref)
                (elem (i32.const 0) $via_table)
                (func $helper (result i32) i32.const 7)
                (func $shared (result i32) i32.const 1)
                (func $a (export "a") (result i32) call $helper call $shared i32.add)
                (func $b (export "b") (result i32) call $shared)
                (func $via_table (result i32) i32.const 3))"#,
        )
        .unwrap();
        let mut bodies = Vec::new();
        for payload in Parser::new(0).parse_all(&wasm) {
            if let Payload::CodeSectionEntry(body) = payload.unwrap() {
                bodies.push(body.range().len() as u64);
            }
        }
        let r = retention(&wasm, 0, &bodies).unwrap();
        let (helper, shared, a, b, via_table) = (0, 1, 2, 3, 4);
        assert_eq!(r.keepers[helper], Keeper::Function(a as u32));
        assert_eq!(r.keepers[shared], Keeper::Roots, "two exports call it");
        assert_eq!(r.keepers[a], Keeper::Roots);
        assert_eq!(r.keepers[via_table], Keeper::Table);
        assert_eq!(r.retained_bytes[a], bodies[a] + bodies[helper]);
        assert_eq!(r.retained_bytes[b], bodies[b]);
    }
}
