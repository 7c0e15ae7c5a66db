// Java RocketMQ 4.7 request-reply as a command for the compat tests, run in
// source-file mode: java -cp "$ROCKETMQ_HOME/lib/*" RequestReplyClient.java ...
//
//   request NAMESRV TOPIC COUNT TIMEOUT_MS   COUNT requests "ping <i>", one at a time;
//                                            even i with request(msg, timeout), odd i
//                                            with request(msg, callback, timeout)
//   reply   NAMESRV TOPIC GROUP SECS         push consumer that answers every request
//                                            with "pong:<body>" (MessageUtil), for SECS
//
// The requester prints one JSON object per request: i, the reply's body and
// topic, whether its CORRELATION_ID is the request's, or the error; then
// {"done": n}. The replier prints "ready" once started and one JSON object
// per reply it sent (or failed to send).

import com.alibaba.fastjson.JSON;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.RequestCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.utils.MessageUtil;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

public class RequestReplyClient {
    static synchronized void emit(Map<String, Object> line) {
        System.out.println(JSON.toJSONString(line));
        System.out.flush();
    }

    static void request(String namesrv, String topic, int count, long timeout) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("compat_java_requesters");
        producer.setNamesrvAddr(namesrv);
        producer.setVipChannelEnabled(false);
        producer.start();
        int done = 0;
        try {
            for (int i = 0; i < count; i++) {
                Message msg = new Message(topic, "TagR",
                    ("ping " + i).getBytes(StandardCharsets.UTF_8));
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("i", i);
                try {
                    Message reply;
                    if (i % 2 == 0) {
                        reply = producer.request(msg, timeout);
                    } else {
                        CountDownLatch latch = new CountDownLatch(1);
                        AtomicReference<Message> got = new AtomicReference<>();
                        AtomicReference<Throwable> failed = new AtomicReference<>();
                        producer.request(msg, new RequestCallback() {
                            @Override
                            public void onSuccess(Message message) {
                                got.set(message);
                                latch.countDown();
                            }

                            @Override
                            public void onException(Throwable e) {
                                failed.set(e);
                                latch.countDown();
                            }
                        }, timeout);
                        latch.await(timeout + 5000, TimeUnit.MILLISECONDS);
                        if (failed.get() != null) {
                            throw new Exception(failed.get());
                        }
                        reply = got.get();
                    }
                    if (reply == null) {
                        line.put("error", "no reply");
                    } else {
                        line.put("body", new String(reply.getBody(), StandardCharsets.UTF_8));
                        line.put("topic", reply.getTopic());
                        String sent = msg.getProperty("CORRELATION_ID");
                        line.put("correlated",
                            sent != null && sent.equals(reply.getProperty("CORRELATION_ID")));
                    }
                } catch (Exception e) {
                    line.put("error", e.toString());
                }
                emit(line);
                done++;
            }
        } finally {
            producer.shutdown();
        }
        Map<String, Object> last = new LinkedHashMap<>();
        last.put("done", done);
        emit(last);
    }

    static void reply(String namesrv, String topic, String group, int seconds) throws Exception {
        DefaultMQProducer replier = new DefaultMQProducer(group + "_replies");
        replier.setNamesrvAddr(namesrv);
        replier.setVipChannelEnabled(false);
        replier.start();
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.setPullTimeDelayMillsWhenException(0L);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, context) -> {
            for (MessageExt msg : msgs) {
                Map<String, Object> line = new LinkedHashMap<>();
                line.put("request", new String(msg.getBody(), StandardCharsets.UTF_8));
                try {
                    byte[] body = ("pong:" + new String(msg.getBody(), StandardCharsets.UTF_8))
                        .getBytes(StandardCharsets.UTF_8);
                    Message replyMessage = MessageUtil.createReplyMessage(msg, body);
                    SendResult result = replier.send(replyMessage, 5000);
                    line.put("status", result.getSendStatus().name());
                    line.put("replyTopic", replyMessage.getTopic());
                } catch (Exception e) {
                    line.put("error", e.toString());
                }
                emit(line);
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(seconds * 1000L);
        consumer.shutdown();
        replier.shutdown();
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "request":
                request(args[1], args[2], Integer.parseInt(args[3]), Long.parseLong(args[4]));
                break;
            case "reply":
                reply(args[1], args[2], args[3], Integer.parseInt(args[4]));
                break;
            default:
                throw new IllegalArgumentException("unknown mode " + args[0]);
        }
        System.exit(0);
    }
}
