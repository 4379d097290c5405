//! Mining policy and the tie rule, as both drivers run them: core says when and on which
//! block to mine ([`MinePolicy`]); the harness mines every job 5 ms after it is asked, like a
//! node on the zero-difficulty network.

mod harness;

use harness::{config, Net};
use rantai_core::{BlockHash, Item, Millis, MinePolicy};

/// Four peers in a line, split between 1 and 2 while 0 and 3 each mine a block: two tips of
/// equal work. Returns the net, the greater and the smaller tip, and which side holds each.
fn tied_line(grace: Millis) -> (Net, BlockHash, [usize; 2], [usize; 2]) {
    let mut net = Net::new(4, |_| {
        let mut c = config();
        c.tie_grace = grace;
        c
    });
    for i in 1..4 {
        net.connect(i - 1, i);
    }
    net.run_for(500);
    net.partition(1, 2);
    let a = net.mine(0).hash();
    net.run_for(1); // another timestamp, another block
    let b = net.mine(3).hash();
    net.run_for(500);
    assert!(net.same_tip(&[0, 1]) && net.same_tip(&[2, 3]) && !net.same_tip(&[1, 2]));
    if a > b {
        (net, a, [0, 1], [2, 3])
    } else {
        (net, b, [2, 3], [0, 1])
    }
}

/// Blocks peer `i` of [`tied_line`] mined to make the tie: 0 and 3 one each.
fn before(i: usize) -> usize {
    usize::from(i == 0 || i == 3)
}

#[test]
fn the_greater_tip_breaks_a_tie_and_the_other_side_waits() {
    let (mut net, greater, winners, losers) = tied_line(Millis::from_secs(30));
    for i in 0..4 {
        net.set_mine_policy(i, MinePolicy::OwnItems);
    }
    net.heal(1, 2);
    assert!(net.run_until(20_000, |n| n.same_tip(&[0, 1, 2, 3])));
    let chain = net.peers[0].chain();
    let block_2 = chain.at_height(2).expect("a tie-break block");
    assert_eq!(
        block_2.prev(),
        greater,
        "the tie is settled on the greater tip"
    );
    for i in losers {
        assert_eq!(
            net.mined_by(i).len(),
            before(i),
            "peer {i} mined nothing new"
        );
    }
    let breakers: usize = winners
        .iter()
        .map(|&i| net.mined_by(i).len() - before(i))
        .sum();
    assert!((1..=3).contains(&breakers), "{breakers} tie-break blocks");
    assert!(chain.height() <= 3);
}

/// The winning side holds no hash power (`Off`): the losers mine nothing on their own tip (a
/// greater one is known) and, once they know of it and `tie_grace` has passed since the later
/// tied block was mined, adopt the greater tip.
#[test]
fn a_tie_whose_winners_cannot_mine_is_settled_on_the_greater_tip_after_the_grace() {
    let grace = Millis::from_secs(3);
    let (mut net, greater, winners, losers) = tied_line(grace);
    for i in losers {
        net.set_mine_policy(i, MinePolicy::OwnItems);
    }
    let healed = net.now;
    net.heal(1, 2);
    net.run_for(grace.0 / 2);
    assert!(
        !net.same_tip(&[0, 1, 2, 3]),
        "first seen holds within the grace"
    );
    assert!(net.run_until(30_000, |n| n.same_tip(&[0, 1, 2, 3])));
    assert!(net.now.since(healed) >= grace, "not before the grace");
    let chain = net.peers[0].chain();
    let first = chain.at_height(1).expect("height 1").hash();
    assert_eq!(first, greater, "settled on the greater tip");
    // Once a loser adopted it, a neighbour still on the smaller tip makes it a holder of the
    // greatest tip that knows of a tie: it may mine one block on it (the winners cannot).
    assert!(chain.height() <= 2);
    for i in winners {
        assert_eq!(net.mined_by(i).len(), before(i), "peer {i} runs `Off`");
    }
}

#[test]
fn always_mines_on_every_new_tip_and_off_never_does() {
    let mut net = Net::new(2, |_| config());
    net.connect(0, 1);
    net.run_for(500);
    net.set_mine_policy(0, MinePolicy::Always);
    net.run_for(100);
    let height = net.tip_height(0);
    assert!(height >= 10, "a job on each new tip: height {height}");
    assert!(net.mined_by(1).is_empty());
    net.set_mine_policy(0, MinePolicy::Off);
    net.run_for(20);
    let stopped = net.tip_height(0);
    net.run_for(1_000);
    assert_eq!(net.tip_height(0), stopped, "`Off` cancels the job");
    assert!(net.same_tip(&[0, 1]));
}

#[test]
fn own_items_mines_what_was_submitted_here_and_all_items_what_was_gossiped() {
    let mut net = Net::new(2, |i| {
        let mut c = config();
        c.relay_items = true;
        c.mining = if i == 0 {
            MinePolicy::OwnItems
        } else {
            MinePolicy::Off
        };
        c
    });
    net.connect(0, 1);
    net.run_for(500);
    let id = net.submit(1, "typed at a peer that does not mine");
    net.run_for(1_000);
    assert!(net.peers[0].pending_items().any(|i| i.id() == id));
    assert_eq!(net.tip_height(0), 0, "not our item: `OwnItems` leaves it");
    net.set_mine_policy(0, MinePolicy::AllItems);
    assert!(net.run_until(1_000, |n| n.peers[1].chain().contains_item(&id)));
    assert_eq!(net.tip_height(0), 1, "one block, then idle");
    net.run_for(1_000);
    assert_eq!(net.tip_height(0), 1);
}

#[test]
fn restored_items_are_mined_again_at_once_unless_the_chain_has_them() {
    let mut net = Net::new(1, |_| {
        let mut c = config();
        c.mining = MinePolicy::OwnItems;
        c
    });
    let id = net.submit(0, "mined before the restart");
    net.run_for(100);
    let mined = net.peers[0].chain().tip().items()[0].clone();
    assert_eq!(mined.id(), id);
    let fresh = Item {
        nonce: 5,
        text: "accepted, not yet mined, when the node stopped".into(),
    };
    assert_eq!(net.restore_items(0, vec![mined, fresh.clone()]), 1);
    assert!(net.run_until(100, |n| n.peers[0].chain().contains_item(&fresh.id())));
    assert_eq!(net.tip_height(0), 2);
    assert_eq!(net.peers[0].pending_len(), 0);
}
