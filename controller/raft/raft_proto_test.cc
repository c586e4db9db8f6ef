#include "controller/raft/raft_proto.h"

#include "gtest/gtest.h"

namespace fjord::raft {
namespace {

namespace pb = ::fjord::internal::v1;

Message RoundTrip(const Message& m) {
  pb::RaftMessage proto;
  MessageToProto(m, &proto);
  // Through bytes, as on the wire.
  pb::RaftMessage parsed;
  EXPECT_TRUE(parsed.ParseFromString(proto.SerializeAsString()));
  absl::StatusOr<Message> back = MessageFromProto(parsed);
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *back : Message{};
}

TEST(RaftProtoTest, EveryMessageTypeRoundTrips) {
  for (int t = 0; t <= static_cast<int>(MessageType::kReadIndexResponse); ++t) {
    Message m;
    m.type = static_cast<MessageType>(t);
    m.from = NodeId(1);
    m.to = NodeId(3);
    m.term = Term(7);
    if (m.type == MessageType::kSnapshot) m.snapshot = Snapshot{};
    EXPECT_EQ(RoundTrip(m), m) << MessageTypeName(m.type);
  }
}

TEST(RaftProtoTest, AllFieldsRoundTrip) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = NodeId(2);
  m.to = NodeId(1);
  m.term = Term(9);
  m.log_index = LogIndex(41);
  m.log_term = Term(8);
  m.entries = {
      Entry{Term(9), LogIndex(42), EntryType::kNoOp, ""},
      Entry{Term(9), LogIndex(43), EntryType::kNormal, std::string("a\0b", 3)},
  };
  m.commit = LogIndex(40);
  m.reject = true;
  m.conflict_index = LogIndex(17);
  m.conflict_term = Term(5);
  m.context = std::string("ctx\xff", 4);
  EXPECT_EQ(RoundTrip(m), m);

  Message snap;
  snap.type = MessageType::kSnapshot;
  snap.from = NodeId(1);
  snap.to = NodeId(2);
  snap.term = Term(3);
  snap.snapshot =
      Snapshot{SnapshotMetadata{LogIndex(100), Term(3), {NodeId(1), NodeId(2)}},
               "state"};
  EXPECT_EQ(RoundTrip(snap), snap);
}

TEST(RaftProtoTest, WireEnumsAreCoreValuesPlusOne) {
  Message m;
  m.type = MessageType::kPreVote;
  pb::RaftMessage proto;
  MessageToProto(m, &proto);
  EXPECT_EQ(proto.type(), pb::RAFT_MESSAGE_TYPE_PRE_VOTE);
  m.type = MessageType::kReadIndexResponse;
  MessageToProto(m, &proto);
  EXPECT_EQ(proto.type(), pb::RAFT_MESSAGE_TYPE_READ_INDEX_RESPONSE);
  pb::RaftEntry e;
  EntryToProto(Entry{Term(1), LogIndex(1), EntryType::kNoOp, ""}, &e);
  EXPECT_EQ(e.type(), pb::RAFT_ENTRY_TYPE_NO_OP);
}

TEST(RaftProtoTest, MalformedMessagesAreRejected) {
  pb::RaftMessage proto;  // UNSPECIFIED type.
  EXPECT_EQ(MessageFromProto(proto).status().code(),
            absl::StatusCode::kInvalidArgument);
  proto.set_type(static_cast<pb::RaftMessageType>(99));
  EXPECT_FALSE(MessageFromProto(proto).ok());
  proto.set_type(pb::RAFT_MESSAGE_TYPE_SNAPSHOT);  // Without its snapshot.
  EXPECT_FALSE(MessageFromProto(proto).ok());
  proto.set_type(pb::RAFT_MESSAGE_TYPE_APPEND);
  proto.add_entries()->set_type(pb::RAFT_ENTRY_TYPE_UNSPECIFIED);
  EXPECT_FALSE(MessageFromProto(proto).ok());
}

}  // namespace
}  // namespace fjord::raft
