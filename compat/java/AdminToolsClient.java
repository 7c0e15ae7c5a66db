// The admin calls rocketmq-dashboard and rocketmq-exporter make, through
// Java 4.7's DefaultMQAdminExt, for the compat tests; run in source-file mode:
//   java -cp "$ROCKETMQ_HOME/lib/*" AdminToolsClient.java NAMESRV BROKER_ADDR
//        TOPIC CONSUMER_GROUP PRODUCER_GROUP KEY OFFSET_MSG_ID UNIQ_MSG_ID
//
// Prints one line per call: "VERDICT <name> ok <summary>" or
// "VERDICT <name> fail <exception class>: <message>".

import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.apache.rocketmq.client.QueryResult;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.impl.factory.MQClientInstance;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.admin.ConsumeStats;
import org.apache.rocketmq.common.admin.OffsetWrapper;
import org.apache.rocketmq.common.admin.RollbackStats;
import org.apache.rocketmq.common.admin.TopicOffset;
import org.apache.rocketmq.common.admin.TopicStatsTable;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.common.protocol.body.ClusterInfo;
import org.apache.rocketmq.common.protocol.body.Connection;
import org.apache.rocketmq.common.protocol.body.ConsumeMessageDirectlyResult;
import org.apache.rocketmq.common.protocol.body.ConsumerConnection;
import org.apache.rocketmq.common.protocol.body.ConsumerRunningInfo;
import org.apache.rocketmq.common.protocol.body.GroupList;
import org.apache.rocketmq.common.protocol.body.KVTable;
import org.apache.rocketmq.common.protocol.body.ProducerConnection;
import org.apache.rocketmq.common.protocol.body.SubscriptionGroupWrapper;
import org.apache.rocketmq.common.protocol.body.TopicConfigSerializeWrapper;
import org.apache.rocketmq.common.protocol.body.TopicList;
import org.apache.rocketmq.common.protocol.body.BrokerStatsData;
import org.apache.rocketmq.common.protocol.route.TopicRouteData;
import org.apache.rocketmq.common.subscription.SubscriptionGroupConfig;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExtImpl;
import org.apache.rocketmq.tools.admin.api.MessageTrack;

public class AdminToolsClient {
    interface Call {
        String run() throws Exception;
    }

    static void verdict(String name, Call call) {
        String line;
        try {
            line = "ok " + call.run();
        } catch (Throwable e) {
            line = "fail " + e.getClass().getName() + ": " + e.getMessage();
        }
        System.out.println("VERDICT " + name + " " + line.replace("\n", " "));
        System.out.flush();
    }

    static Object field(Object owner, String name) throws Exception {
        Field f = owner.getClass().getDeclaredField(name);
        f.setAccessible(true);
        return f.get(owner);
    }

    static String offsets(ConsumeStats stats, String topic) {
        long consumed = 0;
        long stored = 0;
        int queues = 0;
        for (Map.Entry<MessageQueue, OffsetWrapper> e : stats.getOffsetTable().entrySet()) {
            if (topic == null || e.getKey().getTopic().equals(topic)) {
                queues++;
                consumed += e.getValue().getConsumerOffset();
                stored += e.getValue().getBrokerOffset();
            }
        }
        return "queues=" + queues + " consumerOffset=" + consumed + " brokerOffset=" + stored
            + " diff=" + stats.computeTotalDiff();
    }

    public static void main(String[] args) throws Exception {
        final String namesrv = args[0];
        final String broker = args[1];
        final String topic = args[2];
        final String group = args[3];
        final String producerGroup = args[4];
        final String key = args[5];
        final String offsetMsgId = args[6];
        final String uniqMsgId = args[7];
        final String newTopic = topic + "_New";
        final String newGroup = group + "_new";

        final DefaultMQAdminExt admin = new DefaultMQAdminExt(5000);
        admin.setNamesrvAddr(namesrv);
        admin.setInstanceName("dashboard-compat-" + System.nanoTime());
        admin.start();

        verdict("examineBrokerClusterInfo", () -> {
            ClusterInfo info = admin.examineBrokerClusterInfo();
            return "clusters=" + new TreeSet<>(info.getClusterAddrTable().keySet())
                + " brokers=" + new TreeSet<>(info.getBrokerAddrTable().keySet())
                + " master=" + info.getBrokerAddrTable().values().iterator().next().getBrokerAddrs().get(0L);
        });
        verdict("fetchAllTopicList", () -> {
            TopicList list = admin.fetchAllTopicList();
            return "has=" + list.getTopicList().contains(topic) + " count=" + list.getTopicList().size();
        });
        verdict("getSystemTopicList", () -> {
            DefaultMQAdminExtImpl impl = (DefaultMQAdminExtImpl) field(admin, "defaultMQAdminExtImpl");
            MQClientInstance instance = (MQClientInstance) field(impl, "mqClientInstance");
            MQClientAPIImpl api = instance.getMQClientAPIImpl();
            TopicList list = api.getSystemTopicList(5000);
            return "hasCluster=" + list.getTopicList().contains("DefaultCluster")
                + " hasBroker=" + list.getTopicList().contains("broker-a");
        });
        // rocketmq-exporter's getAllProducerInfo is a 4.9 call (code 328),
        // sent here as a bare request: a 4.7 broker does not know the code.
        verdict("getAllProducerInfo", () -> {
            DefaultMQAdminExtImpl impl = (DefaultMQAdminExtImpl) field(admin, "defaultMQAdminExtImpl");
            MQClientInstance instance = (MQClientInstance) field(impl, "mqClientInstance");
            RemotingCommand request = RemotingCommand.createRequestCommand(328, null);
            RemotingCommand response =
                instance.getMQClientAPIImpl().getRemotingClient().invokeSync(broker, request, 5000);
            return "code=" + response.getCode() + " remark=" + response.getRemark();
        });
        verdict("examineTopicRouteInfo", () -> {
            TopicRouteData route = admin.examineTopicRouteInfo(topic);
            return "brokers=" + route.getBrokerDatas().size() + " readQueues="
                + route.getQueueDatas().get(0).getReadQueueNums();
        });
        verdict("examineTopicStats", () -> {
            TopicStatsTable table = admin.examineTopicStats(topic);
            long max = 0;
            for (TopicOffset offset : table.getOffsetTable().values()) {
                max += offset.getMaxOffset();
            }
            return "queues=" + table.getOffsetTable().size() + " maxOffsetSum=" + max;
        });
        verdict("getAllTopicGroup", () -> {
            TopicConfigSerializeWrapper wrapper = admin.getAllTopicGroup(broker, 5000);
            TopicConfig config = wrapper.getTopicConfigTable().get(topic);
            return "has=" + (config != null) + " writeQueues=" + (config == null ? -1 : config.getWriteQueueNums());
        });
        verdict("createAndUpdateTopicConfig", () -> {
            admin.createAndUpdateTopicConfig(broker, new TopicConfig(newTopic, 2, 2, 6));
            TopicConfig config = admin.getAllTopicGroup(broker, 5000).getTopicConfigTable().get(newTopic);
            return "created=" + (config != null && config.getReadQueueNums() == 2);
        });
        verdict("deleteTopicInBroker", () -> {
            admin.deleteTopicInBroker(Collections.singleton(broker), newTopic);
            return "gone=" + !admin.getAllTopicGroup(broker, 5000).getTopicConfigTable().containsKey(newTopic);
        });
        verdict("deleteTopicInNameServer", () -> {
            admin.deleteTopicInNameServer(Collections.singleton(namesrv), newTopic);
            return "gone=" + !admin.fetchAllTopicList().getTopicList().contains(newTopic);
        });
        verdict("fetchBrokerRuntimeStats", () -> {
            KVTable table = admin.fetchBrokerRuntimeStats(broker);
            return "entries=" + table.getTable().size() + " putTotalTodayNow="
                + table.getTable().get("msgPutTotalTodayNow");
        });
        verdict("getBrokerConfig", () -> {
            return "brokerName=" + admin.getBrokerConfig(broker).getProperty("brokerName");
        });
        // The statistics the dashboard's collector and the exporter read.
        String[][] statsItems = {
            {"TOPIC_PUT_NUMS", topic}, {"TOPIC_PUT_SIZE", topic},
            {"GROUP_GET_NUMS", topic + "@" + group}, {"GROUP_GET_SIZE", topic + "@" + group},
            {"BROKER_PUT_NUMS", "DefaultCluster"}, {"BROKER_GET_NUMS", "DefaultCluster"},
            {"SNDBCK_PUT_NUMS", topic + "@" + group},
        };
        for (final String[] item : statsItems) {
            verdict("viewBrokerStatsData:" + item[0], () -> {
                BrokerStatsData data = admin.viewBrokerStatsData(broker, item[0], item[1]);
                return "minuteSum=" + data.getStatsMinute().getSum() + " daySum=" + data.getStatsDay().getSum();
            });
        }
        verdict("createAndUpdateSubscriptionGroupConfig", () -> {
            SubscriptionGroupConfig config = new SubscriptionGroupConfig();
            config.setGroupName(newGroup);
            config.setRetryMaxTimes(7);
            admin.createAndUpdateSubscriptionGroupConfig(broker, config);
            SubscriptionGroupConfig read = admin.getAllSubscriptionGroup(broker, 5000)
                .getSubscriptionGroupTable().get(newGroup);
            return "retryMaxTimes=" + (read == null ? -1 : read.getRetryMaxTimes());
        });
        verdict("getAllSubscriptionGroup", () -> {
            SubscriptionGroupWrapper wrapper = admin.getAllSubscriptionGroup(broker, 5000);
            return "hasGroup=" + wrapper.getSubscriptionGroupTable().containsKey(group)
                + " hasNew=" + wrapper.getSubscriptionGroupTable().containsKey(newGroup);
        });
        verdict("deleteSubscriptionGroup", () -> {
            admin.deleteSubscriptionGroup(broker, newGroup);
            return "gone=" + !admin.getAllSubscriptionGroup(broker, 5000).getSubscriptionGroupTable()
                .containsKey(newGroup);
        });
        verdict("examineConsumeStats", () -> offsets(admin.examineConsumeStats(group), topic));
        verdict("examineConsumeStatsTopic", () -> offsets(admin.examineConsumeStats(group, topic), topic));
        final String[] clientId = {"none"};
        verdict("examineConsumerConnectionInfo", () -> {
            ConsumerConnection connection = admin.examineConsumerConnectionInfo(group);
            Connection first = connection.getConnectionSet().iterator().next();
            clientId[0] = first.getClientId();
            return "connections=" + connection.getConnectionSet().size() + " model="
                + connection.getMessageModel() + " subscribes=" + connection.getSubscriptionTable().keySet()
                + " clientId=" + clientId[0];
        });
        verdict("getConsumerRunningInfo", () -> {
            ConsumerRunningInfo info = admin.getConsumerRunningInfo(group, clientId[0], false);
            return "subscriptions=" + info.getSubscriptionSet().size() + " queues=" + info.getMqTable().size();
        });
        verdict("getConsumerRunningInfoJstack", () -> {
            ConsumerRunningInfo info = admin.getConsumerRunningInfo(group, clientId[0], true);
            return "subscriptions=" + info.getSubscriptionSet().size() + " jstack="
                + (info.getJstack() == null ? "null" : info.getJstack().isEmpty() ? "empty" : "text");
        });
        verdict("queryTopicConsumeByWho", () -> {
            GroupList groups = admin.queryTopicConsumeByWho(topic);
            return "hasGroup=" + groups.getGroupList().contains(group);
        });
        verdict("examineProducerConnectionInfo", () -> {
            ProducerConnection connection = admin.examineProducerConnectionInfo(producerGroup, topic);
            return "connections=" + connection.getConnectionSet().size();
        });
        final MessageExt[] found = {null};
        verdict("queryMessage", () -> {
            long now = System.currentTimeMillis();
            QueryResult result = admin.queryMessage(topic, key, 32, 0, now + 60_000);
            boolean keyed = false;
            for (MessageExt message : result.getMessageList()) {
                keyed |= key.equals(message.getKeys());
            }
            return "found=" + result.getMessageList().size() + " keyMatches=" + keyed;
        });
        verdict("viewMessage", () -> {
            MessageExt message = admin.viewMessage(offsetMsgId);
            found[0] = message;
            return "body=" + new String(message.getBody(), StandardCharsets.UTF_8) + " keys=" + message.getKeys();
        });
        verdict("viewMessageByTopic", () -> {
            MessageExt message = admin.viewMessage(topic, uniqMsgId);
            return "body=" + new String(message.getBody(), StandardCharsets.UTF_8) + " keys=" + message.getKeys();
        });
        verdict("messageTrackDetail", () -> {
            List<MessageTrack> tracks = admin.messageTrackDetail(found[0]);
            StringBuilder text = new StringBuilder("tracks=" + tracks.size());
            for (MessageTrack track : tracks) {
                text.append(" ").append(track.getConsumerGroup()).append(":").append(track.getTrackType());
            }
            return text.toString();
        });
        verdict("consumeMessageDirectly", () -> {
            ConsumeMessageDirectlyResult result = admin.consumeMessageDirectly(group, clientId[0], offsetMsgId);
            return "result=" + result.getConsumeResult();
        });
        verdict("consumeMessageDirectlyByTopic", () -> {
            ConsumeMessageDirectlyResult result =
                admin.consumeMessageDirectly(group, clientId[0], topic, uniqMsgId);
            return "result=" + result.getConsumeResult();
        });
        verdict("resetOffsetByTimestampOld", () -> {
            List<RollbackStats> stats = admin.resetOffsetByTimestampOld(group, topic, 0, true);
            long rolled = 0;
            long consumed = 0;
            for (RollbackStats s : stats) {
                rolled += s.getRollbackOffset();
                consumed += s.getConsumerOffset();
            }
            return "queues=" + stats.size() + " consumerOffsetSum=" + consumed
                + " rollbackOffsetSum=" + rolled;
        });
        verdict("resetOffsetByTimestamp", () -> {
            Map<MessageQueue, Long> reset = admin.resetOffsetByTimestamp(topic, group, 0, true);
            long sum = 0;
            for (Long offset : reset.values()) {
                sum += offset;
            }
            return "queues=" + reset.size() + " offsetSum=" + sum;
        });
        admin.shutdown();
    }
}
