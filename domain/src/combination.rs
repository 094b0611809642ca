//! Tables together: a booking may hold several resources at once.
//!
//! A venue declares which tables may be joined in two ways, which can be
//! mixed:
//!
//! - **fixed combinations**: a list of resources with the seats they give
//!   together (joining tables often loses or gains a seat, so the capacity
//!   is stated, not summed) and optionally the smallest party they are
//!   offered to;
//! - **adjacent pairs**: tables that stand next to each other. Any
//!   connected run of them, of two up to `max_joined` tables, may be
//!   joined and seats the sum of its tables.
//!
//! A combination is offered only to parties larger than its largest
//! member (unless its `min_party` says otherwise): a party that fits one of
//! the tables takes a single table, and joins tables only when no single
//! one is free. Among combinations the smallest free one wins: fewest
//! seats, then fewest tables, then the members' slugs.

use std::collections::BTreeSet;

use crate::{Resource, ResourceId, Slug};

/// A fixed combination, by resource; the first member is the booking's
/// primary resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combination {
    pub resources: Vec<ResourceId>,
    pub capacity: u32,
    /// The smallest party it is offered to; by default one more than its
    /// largest member seats.
    pub min_party: Option<u32>,
}

/// How a venue joins tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablesTogether {
    pub combinations: Vec<Combination>,
    /// Pairs of tables that stand next to each other.
    pub adjacent: Vec<(ResourceId, ResourceId)>,
    /// The most tables one run of adjacent tables may join.
    pub max_joined: u32,
}

impl Default for TablesTogether {
    fn default() -> Self {
        Self {
            combinations: Vec::new(),
            adjacent: Vec::new(),
            max_joined: DEFAULT_MAX_JOINED,
        }
    }
}

/// How many fixed combinations one venue may declare.
pub const MAX_COMBINATIONS: usize = 200;
/// How many adjacent pairs one venue may list.
pub const MAX_ADJACENT: usize = 500;
pub const DEFAULT_MAX_JOINED: u32 = 3;
/// Runs longer than this are not enumerated: the number of connected runs
/// grows quickly with their length.
pub const MAX_JOINED: u32 = 4;
/// A bound on the candidate sets of one venue, whatever its adjacency
/// graph looks like: availability walks them for every slot.
const MAX_CANDIDATES: usize = 2000;

/// A set of resources a party may take together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateSet {
    /// Primary first.
    pub resources: Vec<ResourceId>,
    pub capacity: u32,
    pub min_party: u32,
}

impl CandidateSet {
    pub fn seats(&self, party: u32) -> bool {
        self.min_party <= party && party <= self.capacity
    }
}

impl TablesTogether {
    pub fn is_empty(&self) -> bool {
        self.combinations.is_empty() && self.adjacent.is_empty()
    }

    /// Every set of two or more active resources a party may take: the
    /// fixed combinations whose members are all active, and the connected
    /// runs of adjacent active tables that no fixed combination already
    /// names. Smallest first: fewest seats, fewest tables, then slugs.
    pub fn candidates(&self, resources: &[Resource]) -> Vec<CandidateSet> {
        if self.is_empty() {
            return Vec::new();
        }
        let active = |id: &ResourceId| resources.iter().find(|r| r.id == *id && r.active);
        let mut sets: Vec<(Vec<&Slug>, CandidateSet)> = Vec::new();
        let mut named: BTreeSet<Vec<ResourceId>> = BTreeSet::new();
        for combination in &self.combinations {
            let members: Option<Vec<&Resource>> =
                combination.resources.iter().map(active).collect();
            let Some(members) = members else { continue };
            let mut key = combination.resources.clone();
            key.sort();
            named.insert(key);
            let largest = members.iter().map(|r| r.capacity).max().unwrap_or(0);
            sets.push((
                members.iter().map(|r| &r.slug).collect(),
                CandidateSet {
                    resources: combination.resources.clone(),
                    capacity: combination.capacity,
                    min_party: combination.min_party.unwrap_or(largest + 1),
                },
            ));
        }
        for run in self.runs(resources) {
            let mut key: Vec<ResourceId> = run.iter().map(|r| r.id).collect();
            key.sort();
            if named.contains(&key) {
                continue;
            }
            let largest = run.iter().map(|r| r.capacity).max().unwrap_or(0);
            sets.push((
                run.iter().map(|r| &r.slug).collect(),
                CandidateSet {
                    resources: run.iter().map(|r| r.id).collect(),
                    capacity: run.iter().map(|r| r.capacity).sum(),
                    min_party: largest + 1,
                },
            ));
        }
        sets.sort_by(|(a_slugs, a), (b_slugs, b)| {
            a.capacity
                .cmp(&b.capacity)
                .then_with(|| a.resources.len().cmp(&b.resources.len()))
                .then_with(|| a_slugs.cmp(b_slugs))
        });
        sets.into_iter().map(|(_, set)| set).collect()
    }

    /// Connected runs of 2..=`max_joined` adjacent active resources, each
    /// once, its members in slug order.
    fn runs<'a>(&self, resources: &'a [Resource]) -> Vec<Vec<&'a Resource>> {
        let index = |id: &ResourceId| resources.iter().position(|r| r.id == *id && r.active);
        let edges: Vec<(usize, usize)> = self
            .adjacent
            .iter()
            .filter_map(|(a, b)| Some((index(a)?, index(b)?)))
            .collect();
        if edges.is_empty() {
            return Vec::new();
        }
        // Neighbours by position, built once: availability asks for the
        // runs on every query.
        let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); resources.len()];
        for &(a, b) in &edges {
            if a != b {
                adjacency[a].push(b);
                adjacency[b].push(a);
            }
        }
        let neighbours = |node: usize| adjacency[node].iter().copied();
        let mut found: BTreeSet<Vec<usize>> = BTreeSet::new();
        let mut frontier: BTreeSet<Vec<usize>> = edges
            .iter()
            .filter(|(a, b)| a != b)
            .map(|&(a, b)| if a < b { vec![a, b] } else { vec![b, a] })
            .collect();
        let max = usize::try_from(self.max_joined.clamp(2, MAX_JOINED)).unwrap_or(2);
        while !frontier.is_empty() && found.len() < MAX_CANDIDATES {
            let size = frontier.iter().next().map_or(0, Vec::len);
            found.extend(frontier.iter().cloned());
            if size >= max {
                break;
            }
            let mut next = BTreeSet::new();
            for set in &frontier {
                for &member in set {
                    for neighbour in neighbours(member) {
                        if !set.contains(&neighbour) {
                            let mut grown = set.clone();
                            grown.push(neighbour);
                            grown.sort_unstable();
                            next.insert(grown);
                        }
                    }
                }
                if next.len() + found.len() >= MAX_CANDIDATES {
                    break;
                }
            }
            frontier = next;
        }
        found
            .into_iter()
            .take(MAX_CANDIDATES)
            .map(|set| {
                let mut run: Vec<&Resource> = set.into_iter().map(|i| &resources[i]).collect();
                run.sort_by(|a, b| a.slug.cmp(&b.slug));
                run
            })
            .collect()
    }
}

/// A fixed combination as a venue file or `saveVenue` writes it, by slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CombinationDefinition {
    pub resources: Vec<Slug>,
    pub capacity: u32,
    pub min_party: Option<u32>,
}

/// What is wrong with a venue's tables-together definition: which entry
/// (`combination` or `adjacent`, by position), which of its keys, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub list: &'static str,
    pub position: Option<usize>,
    pub key: &'static str,
    pub reason: String,
}

fn refuse(
    list: &'static str,
    position: Option<usize>,
    key: &'static str,
    reason: impl Into<String>,
) -> Refusal {
    Refusal {
        list,
        position,
        key,
        reason: reason.into(),
    }
}

/// Checks combinations and adjacent pairs against the venue's resources
/// (their slugs): at least two members each, all of them this venue's, none
/// twice, no combination or pair declared twice, capacities and smallest
/// parties in range.
pub fn check(
    known: &[&Slug],
    combinations: &[CombinationDefinition],
    adjacent: &[(Slug, Slug)],
    max_joined: u32,
) -> Result<(), Refusal> {
    if combinations.len() > MAX_COMBINATIONS {
        return Err(refuse(
            "combination",
            None,
            "resources",
            format!("a venue has at most {MAX_COMBINATIONS} combinations"),
        ));
    }
    if adjacent.len() > MAX_ADJACENT {
        return Err(refuse(
            "adjacent",
            None,
            "resources",
            format!("a venue lists at most {MAX_ADJACENT} adjacent pairs"),
        ));
    }
    if !(2..=MAX_JOINED).contains(&max_joined) {
        return Err(refuse(
            "max_joined",
            None,
            "max_joined",
            format!("must be between 2 and {MAX_JOINED}"),
        ));
    }
    let mut seen: Vec<Vec<&Slug>> = Vec::new();
    for (position, combination) in combinations.iter().enumerate() {
        let at = |key, reason: String| refuse("combination", Some(position), key, reason);
        check_members(known, &combination.resources).map_err(|r| at("resources", r))?;
        let mut key: Vec<&Slug> = combination.resources.iter().collect();
        key.sort();
        if seen.contains(&key) {
            return Err(at(
                "resources",
                "the same tables are combined twice".to_owned(),
            ));
        }
        seen.push(key);
        if !(1..=Resource::MAX_CAPACITY).contains(&combination.capacity) {
            return Err(at(
                "capacity",
                format!("must be between 1 and {}", Resource::MAX_CAPACITY),
            ));
        }
        if let Some(min) = combination.min_party
            && !(1..=combination.capacity).contains(&min)
        {
            return Err(at(
                "min_party",
                "must be between 1 and the combination's capacity".to_owned(),
            ));
        }
    }
    let mut pairs: Vec<(&Slug, &Slug)> = Vec::new();
    for (position, (a, b)) in adjacent.iter().enumerate() {
        let members = [a.clone(), b.clone()];
        check_members(known, &members)
            .map_err(|r| refuse("adjacent", Some(position), "resources", r))?;
        let pair = if a < b { (a, b) } else { (b, a) };
        if pairs.contains(&pair) {
            return Err(refuse(
                "adjacent",
                Some(position),
                "resources",
                format!("`{a}` and `{b}` are listed as adjacent twice"),
            ));
        }
        pairs.push(pair);
    }
    Ok(())
}

fn check_members(known: &[&Slug], members: &[Slug]) -> Result<(), String> {
    if members.len() < 2 {
        return Err("a combination joins at least two tables".to_owned());
    }
    if members.len() > MAX_JOINED as usize * 4 {
        return Err("a combination joins at most 16 tables".to_owned());
    }
    for (index, slug) in members.iter().enumerate() {
        if !known.contains(&slug) {
            return Err(format!("`{slug}` is no resource of this venue"));
        }
        if members[..index].contains(slug) {
            return Err(format!("`{slug}` appears twice in one combination"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResourceKind, VenueId};

    fn table(slug: &str, capacity: u32) -> Resource {
        Resource {
            id: ResourceId::new_random(),
            venue_id: VenueId::new_random(),
            slug: Slug::parse(slug).expect("valid"),
            name: slug.to_owned(),
            kind: ResourceKind::Table,
            capacity,
            active: true,
            hours: None,
        }
    }

    #[test]
    fn runs_of_adjacent_tables_are_connected_and_bounded() {
        let tables: Vec<Resource> = ["t1", "t2", "t3", "t4"]
            .iter()
            .map(|s| table(s, 4))
            .collect();
        let together = TablesTogether {
            combinations: Vec::new(),
            adjacent: tables.windows(2).map(|w| (w[0].id, w[1].id)).collect(),
            max_joined: 3,
        };
        let sets = together.candidates(&tables);
        // Three pairs and two runs of three in a line of four.
        assert_eq!(sets.len(), 5);
        assert_eq!(sets[0].resources, vec![tables[0].id, tables[1].id]);
        assert_eq!(sets[0].capacity, 8);
        assert_eq!(sets[0].min_party, 5);
        assert!(sets.iter().all(|s| s.resources.len() <= 3));
        assert!(
            !sets.iter().any(|s| s.resources.contains(&tables[0].id)
                && s.resources.contains(&tables[2].id)
                && !s.resources.contains(&tables[1].id)),
            "t1 and t3 only join through t2"
        );
    }

    #[test]
    fn a_fixed_combination_states_its_seats_and_replaces_the_same_run() {
        let tables = [table("t1", 4), table("t2", 4)];
        let together = TablesTogether {
            combinations: vec![Combination {
                resources: vec![tables[1].id, tables[0].id],
                capacity: 7,
                min_party: Some(6),
            }],
            adjacent: vec![(tables[0].id, tables[1].id)],
            max_joined: 3,
        };
        let sets = together.candidates(&tables);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].resources[0], tables[1].id, "primary as listed");
        assert!(!sets[0].seats(5) && sets[0].seats(6) && !sets[0].seats(8));
        let mut retired = tables.clone();
        retired[0].active = false;
        assert!(together.candidates(&retired).is_empty());
    }

    #[test]
    fn bad_definitions_name_the_entry_and_key() {
        let slugs: Vec<Slug> = ["t1", "t2", "t3"]
            .iter()
            .map(|s| Slug::parse(s).expect("valid"))
            .collect();
        let known: Vec<&Slug> = slugs.iter().collect();
        let combo = |members: &[usize], capacity| CombinationDefinition {
            resources: members.iter().map(|&i| slugs[i].clone()).collect(),
            capacity,
            min_party: None,
        };
        let unknown = CombinationDefinition {
            resources: vec![slugs[0].clone(), Slug::parse("t9").expect("valid")],
            capacity: 8,
            min_party: None,
        };
        let refused = check(&known, &[combo(&[0, 1], 8), unknown], &[], 3).expect_err("unknown");
        assert_eq!((refused.position, refused.key), (Some(1), "resources"));
        assert!(check(&known, &[combo(&[0], 8)], &[], 3).is_err());
        assert!(check(&known, &[combo(&[0, 0], 8)], &[], 3).is_err());
        assert!(check(&known, &[combo(&[0, 1], 8), combo(&[1, 0], 7)], &[], 3).is_err());
        assert_eq!(
            check(&known, &[combo(&[0, 1], 0)], &[], 3).map_err(|r| r.key),
            Err("capacity")
        );
        let pair = (slugs[0].clone(), slugs[1].clone());
        let back = (slugs[1].clone(), slugs[0].clone());
        assert!(check(&known, &[], &[pair.clone(), back], 3).is_err());
        assert!(check(&known, &[], std::slice::from_ref(&pair), 5).is_err());
        assert!(check(&known, &[combo(&[0, 1, 2], 12)], &[pair], 3).is_ok());
    }
}
