//! Share sessions (KIP-932), as Kafka's `ShareSessionCache`: one per (group, member) on each
//! broker, holding the partitions the member fetches and the epoch the next request must
//! carry. A ShareFetch at epoch 0 opens (or replaces) the session with the request's
//! partitions; later requests carry the epoch the broker expects next (1, 2 and on, wrapping
//! to 1) and add partitions or forget them; epoch -1 ends the session, releasing the member's
//! records. A session also ends when the connection that opened it closes (Kafka's
//! disconnect listener). At most `group.share.max.share.sessions` sessions exist; a new one
//! beyond that is refused (SHARE_SESSION_LIMIT_REACHED).

use std::collections::HashMap;
use std::net::SocketAddr;

use uuid::Uuid;

use crate::protocol::WireError;

#[derive(Debug, Clone)]
pub struct Session {
    /// The epoch the next request must carry.
    pub epoch: i32,
    /// Partitions in fetch order (rotated for fairness).
    pub partitions: Vec<(Uuid, i32)>,
    /// The connection that opened it.
    pub connection: SocketAddr,
}

/// A session that ended: (group, member, its partitions).
pub type Ended = (String, String, Vec<(Uuid, i32)>);

#[derive(Debug, Default)]
pub struct Sessions {
    by_member: HashMap<(String, String), Session>,
}

/// What a request's epoch means for its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A new session (epoch 0): answer every partition.
    New,
    /// The next request of an existing session.
    Next,
    /// The final request (epoch -1): acknowledge, then release and close.
    Final,
}

/// Kafka's check of a ShareFetch/ShareAcknowledge member id (`isMemberIdValid`): present,
/// 1 to 36 characters (the Java client sends a 22-character base64 UUID).
pub fn member_id_valid(member: Option<&str>) -> bool {
    member.is_some_and(|m| !m.is_empty() && m.chars().count() <= 36)
}

fn next_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

impl Sessions {
    pub fn len(&self) -> usize {
        self.by_member.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_member.is_empty()
    }

    pub fn get(&self, group: &str, member: &str) -> Option<&Session> {
        self.by_member.get(&(group.to_string(), member.to_string()))
    }

    /// ShareFetch's session step. `add`: the request's partitions; `forget`: its forgotten
    /// ones. Returns how the session was opened and the partitions to fetch (all of the
    /// session's, in its order), or the top-level error code.
    #[allow(clippy::too_many_arguments)]
    pub fn on_fetch(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        add: &[(Uuid, i32)],
        forget: &[(Uuid, i32)],
        connection: SocketAddr,
        max_sessions: usize,
    ) -> Result<(Opened, Vec<(Uuid, i32)>), i16> {
        let key = (group.to_string(), member.to_string());
        match epoch {
            0 => {
                if !self.by_member.contains_key(&key) && self.by_member.len() >= max_sessions {
                    return Err(WireError::ShareSessionLimitReached.code());
                }
                let mut partitions = Vec::new();
                for p in add {
                    if !partitions.contains(p) {
                        partitions.push(*p);
                    }
                }
                self.by_member.insert(
                    key,
                    Session {
                        epoch: 1,
                        partitions: partitions.clone(),
                        connection,
                    },
                );
                Ok((Opened::New, partitions))
            }
            -1 => match self.by_member.get(&key) {
                None => Err(WireError::ShareSessionNotFound.code()),
                Some(_) => Ok((Opened::Final, Vec::new())),
            },
            e => {
                let Some(s) = self.by_member.get_mut(&key) else {
                    return Err(WireError::ShareSessionNotFound.code());
                };
                if s.epoch != e {
                    return Err(WireError::InvalidShareSessionEpoch.code());
                }
                for p in add {
                    if !s.partitions.contains(p) {
                        s.partitions.push(*p);
                    }
                }
                s.partitions.retain(|p| !forget.contains(p));
                s.epoch = next_epoch(e);
                // Fairness (Kafka's PartitionRotateStrategy): start each fetch at another
                // partition.
                let mut order = s.partitions.clone();
                if order.len() > 1 {
                    let k = (e as usize) % order.len();
                    order.rotate_left(k);
                }
                Ok((Opened::Next, order))
            }
        }
    }

    /// ShareAcknowledge's session step: epoch 0 is refused, -1 is final, anything else must be
    /// the session's next epoch (ShareFetch and ShareAcknowledge share the sequence).
    pub fn on_acknowledge(&mut self, group: &str, member: &str, epoch: i32) -> Result<Opened, i16> {
        let key = (group.to_string(), member.to_string());
        match epoch {
            0 => Err(WireError::InvalidShareSessionEpoch.code()),
            -1 => match self.by_member.get(&key) {
                None => Err(WireError::ShareSessionNotFound.code()),
                Some(_) => Ok(Opened::Final),
            },
            e => {
                let Some(s) = self.by_member.get_mut(&key) else {
                    return Err(WireError::ShareSessionNotFound.code());
                };
                if s.epoch != e {
                    return Err(WireError::InvalidShareSessionEpoch.code());
                }
                s.epoch = next_epoch(e);
                Ok(Opened::Next)
            }
        }
    }

    /// Ends a session; returns its partitions.
    pub fn remove(&mut self, group: &str, member: &str) -> Option<Session> {
        self.by_member
            .remove(&(group.to_string(), member.to_string()))
    }

    /// Ends every session opened by `connection`; returns (group, member, partitions).
    pub fn remove_connection(&mut self, connection: SocketAddr) -> Vec<Ended> {
        let keys: Vec<(String, String)> = self
            .by_member
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let s = self.by_member.remove(&k)?;
                Some((k.0, k.1, s.partitions))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Uuid = Uuid::from_u64_pair(1, 2);

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn epochs_follow_kafkas_rules() {
        let mut s = Sessions::default();
        let c = addr(1);
        assert_eq!(
            s.on_fetch("g", "m", 1, &[], &[], c, 10).unwrap_err(),
            WireError::ShareSessionNotFound.code()
        );
        let (o, parts) = s
            .on_fetch("g", "m", 0, &[(T, 0), (T, 1)], &[], c, 10)
            .unwrap();
        assert_eq!((o, parts.len()), (Opened::New, 2));
        assert_eq!(
            s.on_fetch("g", "m", 2, &[], &[], c, 10).unwrap_err(),
            WireError::InvalidShareSessionEpoch.code()
        );
        let (o, parts) = s
            .on_fetch("g", "m", 1, &[(T, 2)], &[(T, 0)], c, 10)
            .unwrap();
        assert_eq!(o, Opened::Next);
        assert_eq!(parts.len(), 2);
        assert_eq!(s.on_acknowledge("g", "m", 2).unwrap(), Opened::Next);
        assert_eq!(
            s.on_acknowledge("g", "m", 0).unwrap_err(),
            WireError::InvalidShareSessionEpoch.code()
        );
        assert!(s.on_fetch("g", "m", 3, &[], &[], c, 10).is_ok());
        assert_eq!(
            s.on_fetch("g", "m", -1, &[], &[], c, 10).unwrap().0,
            Opened::Final
        );
        assert_eq!(s.remove("g", "m").unwrap().partitions.len(), 2);
        assert_eq!(
            s.on_acknowledge("g", "m", -1).unwrap_err(),
            WireError::ShareSessionNotFound.code()
        );
    }

    #[test]
    fn sessions_are_bounded_and_end_with_their_connection() {
        let mut s = Sessions::default();
        s.on_fetch("g", "a", 0, &[(T, 0)], &[], addr(1), 2).unwrap();
        s.on_fetch("g", "b", 0, &[(T, 0)], &[], addr(2), 2).unwrap();
        assert_eq!(
            s.on_fetch("g", "c", 0, &[], &[], addr(3), 2).unwrap_err(),
            WireError::ShareSessionLimitReached.code()
        );
        // Re-opening an existing member's session is not a new one.
        assert!(s.on_fetch("g", "a", 0, &[], &[], addr(1), 2).is_ok());
        let gone = s.remove_connection(addr(2));
        assert_eq!(gone.len(), 1);
        assert_eq!(s.len(), 1);
    }
}
