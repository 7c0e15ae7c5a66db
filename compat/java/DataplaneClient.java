// The Java RocketMQ 4.7 client as a command for the compat tests, run in
// source-file mode: java -cp "$ROCKETMQ_HOME/lib/*" DataplaneClient.java ...
//
//   produce NAMESRV TOPIC COUNT             sends COUNT messages, prints a summary
//   push    NAMESRV TOPIC GROUP COUNT SECS  push consumer until COUNT distinct arrived
//   pull    NAMESRV TOPIC GROUP             pull consumer, every queue from offset 0
//
// Message i has tags Tag<i%3>, keys KEY<i>, user property idx=i, and a body
// naming i (every 50th one about 6 KiB, which the producer compresses); it is
// sent sync, async, oneway or orderly (to queue i % queues) by i % 4. The
// consumers print one JSON object per message and then {"done": n}.

import com.alibaba.fastjson.JSON;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

public class DataplaneClient {
    static final String[] MODES = {"sync", "async", "oneway", "orderly"};

    static byte[] body(int i) {
        String text = "message " + i + " from the Java client ";
        if (i % 50 == 0) {
            StringBuilder big = new StringBuilder();
            for (int k = 0; k < 150; k++) {
                big.append(text);
            }
            text = big.toString();
        }
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static Message message(String topic, int i) {
        Message msg = new Message(topic, "Tag" + (i % 3), "KEY" + i, body(i));
        msg.putUserProperty("idx", Integer.toString(i));
        return msg;
    }

    static String sha256(byte[] data) throws Exception {
        StringBuilder hex = new StringBuilder();
        for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) {
            hex.append(String.format("%02x", b));
        }
        return hex.toString();
    }

    static synchronized void emit(Map<String, Object> line) {
        System.out.println(JSON.toJSONString(line));
        System.out.flush();
    }

    static Map<String, Object> describe(MessageExt msg) throws Exception {
        Map<String, Object> line = new LinkedHashMap<String, Object>();
        line.put("i", Integer.parseInt(msg.getUserProperty("idx")));
        line.put("tags", msg.getTags());
        line.put("keys", msg.getKeys());
        line.put("body_sha", sha256(msg.getBody()));
        line.put("body_len", msg.getBody().length);
        line.put("queue", msg.getQueueId());
        line.put("offset", msg.getQueueOffset());
        line.put("topic", msg.getTopic());
        return line;
    }

    static void produce(String namesrv, String topic, int count) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("compat_dataplane_producer");
        producer.setNamesrvAddr(namesrv);
        producer.setSendMsgTimeout(10000);
        producer.start();
        Map<String, Integer> ok = new LinkedHashMap<String, Integer>();
        for (String mode : MODES) {
            ok.put(mode, 0);
        }
        final AtomicInteger asyncOk = new AtomicInteger();
        final AtomicInteger asyncFailed = new AtomicInteger();
        int asyncCount = 0;
        for (int i = 0; i < count; i++) {
            if (i % 4 == 1) {
                asyncCount++;
            }
        }
        final CountDownLatch asyncDone = new CountDownLatch(asyncCount);
        List<String> failures = new ArrayList<String>();
        for (int i = 0; i < count; i++) {
            Message msg = message(topic, i);
            String mode = MODES[i % 4];
            if (mode.equals("sync")) {
                SendResult result = producer.send(msg);
                if (result.getSendStatus() == SendStatus.SEND_OK) {
                    ok.put(mode, ok.get(mode) + 1);
                } else {
                    failures.add(i + ": " + result);
                }
            } else if (mode.equals("async")) {
                producer.send(msg, new SendCallback() {
                    public void onSuccess(SendResult result) {
                        if (result.getSendStatus() == SendStatus.SEND_OK) {
                            asyncOk.incrementAndGet();
                        } else {
                            asyncFailed.incrementAndGet();
                        }
                        asyncDone.countDown();
                    }

                    public void onException(Throwable e) {
                        asyncFailed.incrementAndGet();
                        asyncDone.countDown();
                    }
                });
            } else if (mode.equals("oneway")) {
                producer.sendOneway(msg);
                ok.put(mode, ok.get(mode) + 1);
            } else {
                SendResult result = producer.send(msg, (mqs, m, arg) -> mqs.get((Integer) arg % mqs.size()), i);
                if (result.getSendStatus() == SendStatus.SEND_OK
                    && result.getMessageQueue().getQueueId() == i % 4) {
                    ok.put(mode, ok.get(mode) + 1);
                } else {
                    failures.add(i + ": " + result);
                }
            }
        }
        if (!asyncDone.await(60, TimeUnit.SECONDS)) {
            failures.add("async sends not all answered");
        }
        ok.put("async", asyncOk.get());
        Map<String, Object> report = new LinkedHashMap<String, Object>();
        for (Map.Entry<String, Integer> entry : ok.entrySet()) {
            report.put(entry.getKey() + "_ok", entry.getValue());
        }
        report.put("async_failed", asyncFailed.get());
        report.put("failures", failures);
        emit(report);
        producer.shutdown();
    }

    static void push(String namesrv, String topic, String group, int count, int seconds)
        throws Exception {
        final Set<Integer> seen = new HashSet<Integer>();
        final AtomicInteger lines = new AtomicInteger();
        final CountDownLatch all = new CountDownLatch(1);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, context) -> {
            try {
                for (MessageExt msg : msgs) {
                    emit(describe(msg));
                    lines.incrementAndGet();
                    synchronized (seen) {
                        seen.add(Integer.parseInt(msg.getUserProperty("idx")));
                        if (seen.size() >= count) {
                            all.countDown();
                        }
                    }
                }
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        all.await(seconds, TimeUnit.SECONDS);
        // Let duplicates, if any, show before stopping (and commit offsets).
        Thread.sleep(1000);
        consumer.shutdown();
        Map<String, Object> done = new LinkedHashMap<String, Object>();
        done.put("done", lines.get());
        emit(done);
    }

    static void pull(String namesrv, String topic, String group) throws Exception {
        DefaultMQPullConsumer consumer = new DefaultMQPullConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.start();
        int lines = 0;
        for (MessageQueue mq : consumer.fetchSubscribeMessageQueues(topic)) {
            long offset = 0;
            while (true) {
                PullResult result = consumer.pull(mq, "*", offset, 32);
                if (result.getPullStatus() == PullStatus.FOUND) {
                    for (MessageExt msg : result.getMsgFoundList()) {
                        emit(describe(msg));
                        lines++;
                    }
                } else if (result.getPullStatus() == PullStatus.NO_NEW_MSG) {
                    break;
                } else if (result.getPullStatus() != PullStatus.NO_MATCHED_MSG) {
                    throw new IllegalStateException(mq + " at " + offset + ": " + result);
                }
                offset = result.getNextBeginOffset();
            }
        }
        consumer.shutdown();
        Map<String, Object> done = new LinkedHashMap<String, Object>();
        done.put("done", lines);
        emit(done);
    }

    public static void main(String[] args) throws Exception {
        String command = args[0];
        if (command.equals("produce")) {
            produce(args[1], args[2], Integer.parseInt(args[3]));
        } else if (command.equals("push")) {
            push(args[1], args[2], args[3], Integer.parseInt(args[4]), Integer.parseInt(args[5]));
        } else if (command.equals("pull")) {
            pull(args[1], args[2], args[3]);
        } else {
            throw new IllegalArgumentException("unknown command " + command);
        }
        System.exit(0);
    }
}
