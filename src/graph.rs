//! Dependency order: a topological sort with a stable tie-break, and the cycle that
//! prevents one, reported as a closed path (`a -> b -> a`) so a user sees where it is.

/// Find a cycle among `n` nodes; the path returned ends where it starts (`a b c a`).
pub fn find_cycle(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> Option<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for (a, b) in edges {
        if a < n && b < n {
            adj[a].push(b);
        }
    }
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; n];
    let mut stack: Vec<usize> = Vec::new();
    fn dfs(
        v: usize,
        adj: &[Vec<usize>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[v] = 1;
        stack.push(v);
        for &w in &adj[v] {
            if state[w] == 1 {
                let start = stack.iter().position(|&x| x == w).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(w);
                return Some(cycle);
            }
            if state[w] == 0
                && let Some(c) = dfs(w, adj, state, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        state[v] = 2;
        None
    }
    for v in 0..n {
        if state[v] == 0
            && let Some(c) = dfs(v, &adj, &mut state, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

/// Topological order: a node comes after every node it depends on (`(a, b)`: a depends on
/// b); among ready nodes the lowest index goes first. `Err` holds a cycle.
pub fn order(n: usize, edges: &[(usize, usize)]) -> Result<Vec<usize>, Vec<usize>> {
    if let Some(c) = find_cycle(n, edges.iter().copied()) {
        return Err(c);
    }
    let mut pending: Vec<usize> = vec![0; n];
    for &(a, b) in edges {
        if a != b {
            pending[a] += 1;
        }
    }
    let mut done = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some(next) = (0..n).find(|&i| !done[i] && pending[i] == 0) else {
            break;
        };
        done[next] = true;
        out.push(next);
        for &(a, b) in edges {
            if b == next && a != b {
                pending[a] -= 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_follows_dependencies_then_file_order() {
        // 0 users, 1 votes(users, projects), 2 projects(users, events), 3 events(users)
        let edges = [(1, 0), (1, 2), (2, 0), (2, 3), (3, 0)];
        assert_eq!(order(4, &edges).unwrap(), vec![0, 3, 2, 1]);
        assert_eq!(order(3, &[]).unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn cycle_path_is_closed() {
        let c = find_cycle(3, [(0, 1), (1, 2), (2, 0)]).unwrap();
        assert_eq!(c, vec![0, 1, 2, 0]);
        assert!(order(2, &[(0, 1), (1, 0)]).is_err());
        assert!(find_cycle(3, [(0, 1), (1, 2)]).is_none());
    }
}
