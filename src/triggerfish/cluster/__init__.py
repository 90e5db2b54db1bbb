"""What the nodes sharing one store do together: membership (heartbeats), the leader
lease (schedules run on one node), and change announcements (caches dropped on every
node when one of them deploys or moves an alias)."""

from triggerfish.cluster.changes import ChangeWatcher
from triggerfish.cluster.lease import LeaderLease
from triggerfish.cluster.membership import Membership, NodeView

__all__ = ["ChangeWatcher", "LeaderLease", "Membership", "NodeView"]
