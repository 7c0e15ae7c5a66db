// Java RocketMQ 4.7's transactional producer and a push consumer as a
// command for the compat tests, run in source-file mode:
// java -cp "$ROCKETMQ_HOME/lib/*" TransactionClient.java ...
//
//   produce NAMESRV TOPIC GROUP EACH SECS   EACH messages of every kind, then
//                                           waits up to SECS for the checks
//   consume NAMESRV TOPIC GROUP COUNT SECS  push consumer until COUNT arrived,
//                                           then SECS more for strays
//
// A message's body names its kind: "commit-i" and "rollback-i" end at once,
// "unknown-commit-i" and "unknown-rollback-i" are left open (UNKNOW) and
// settled by the broker's check. The producer prints {"checked": body} per
// check and a summary; the consumer {"body": ..., "tran": ...} per message
// and {"done": n}.

import com.alibaba.fastjson.JSON;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

public class TransactionClient {
    static final String[] KINDS = {"commit", "rollback", "unknown-commit", "unknown-rollback"};

    static String text(byte[] body) {
        return new String(body, StandardCharsets.UTF_8);
    }

    static void print(Map<String, Object> fields) {
        synchronized (System.out) {
            System.out.println(JSON.toJSONString(fields));
            System.out.flush();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("produce")) {
            produce(args[1], args[2], args[3], Integer.parseInt(args[4]), Integer.parseInt(args[5]));
        } else {
            consume(args[1], args[2], args[3], Integer.parseInt(args[4]), Integer.parseInt(args[5]));
        }
        System.exit(0);
    }

    static void produce(String ns, String topic, String group, int each, int secs) throws Exception {
        Set<String> checked = ConcurrentHashMap.newKeySet();
        TransactionMQProducer producer = new TransactionMQProducer(group);
        producer.setNamesrvAddr(ns);
        producer.setTransactionListener(new TransactionListener() {
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                String body = text(msg.getBody());
                if (body.startsWith("commit-")) {
                    return LocalTransactionState.COMMIT_MESSAGE;
                }
                if (body.startsWith("rollback-")) {
                    return LocalTransactionState.ROLLBACK_MESSAGE;
                }
                return LocalTransactionState.UNKNOW;
            }

            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                String body = text(msg.getBody());
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("checked", body);
                line.put("topic", msg.getTopic());
                print(line);
                checked.add(body);
                return body.startsWith("unknown-commit-")
                    ? LocalTransactionState.COMMIT_MESSAGE
                    : LocalTransactionState.ROLLBACK_MESSAGE;
            }
        });
        producer.start();
        int ok = 0;
        for (int i = 0; i < each; i++) {
            for (String kind : KINDS) {
                Message msg = new Message(topic, "TagTx", (kind + "-" + i).getBytes(StandardCharsets.UTF_8));
                TransactionSendResult result = producer.sendMessageInTransaction(msg, null);
                if (result.getSendStatus() == SendStatus.SEND_OK) {
                    ok++;
                }
            }
        }
        long deadline = System.currentTimeMillis() + secs * 1000L;
        while (checked.size() < 2 * each && System.currentTimeMillis() < deadline) {
            TimeUnit.MILLISECONDS.sleep(100);
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("sent_ok", ok);
        summary.put("checked", checked.size());
        print(summary);
        producer.shutdown();
    }

    static void consume(String ns, String topic, String group, int count, int secs) throws Exception {
        Set<String> seen = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(ns);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, context) -> {
            for (MessageExt msg : msgs) {
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("body", text(msg.getBody()));
                line.put("tran", msg.getProperty("TRAN_MSG"));
                print(line);
                seen.add(text(msg.getBody()));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        long deadline = System.currentTimeMillis() + 120_000L;
        while (seen.size() < count && System.currentTimeMillis() < deadline) {
            TimeUnit.MILLISECONDS.sleep(100);
        }
        TimeUnit.SECONDS.sleep(secs);
        Map<String, Object> done = new LinkedHashMap<>();
        done.put("done", seen.size());
        print(done);
        consumer.shutdown();
    }
}
