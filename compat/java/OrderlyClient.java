// Java 4.7's orderly push consumer for the compat tests, run in source-file
// mode: java -cp "$ROCKETMQ_HOME/lib/*" OrderlyClient.java NAMESRV TOPIC GROUP SECS
//
// Consumes TOPIC with a MessageListenerOrderly for SECS seconds (starting at
// the first offset of a group without offsets), printing one JSON line per
// message ({"i", "queue", "offset", "start", "end"}, times in ms), then
// {"ready": true} once started and {"done": n} after shutting down.

import com.alibaba.fastjson.JSON;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;

public class OrderlyClient {
    static synchronized void emit(Map<String, Object> line) {
        System.out.println(JSON.toJSONString(line));
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String namesrv = args[0];
        String topic = args[1];
        String group = args[2];
        int seconds = Integer.parseInt(args[3]);
        final AtomicInteger lines = new AtomicInteger();
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setClientIP("127.0.0.1");
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerOrderly) (msgs, context) -> {
            long start = System.currentTimeMillis();
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            for (MessageExt msg : msgs) {
                Map<String, Object> line = new LinkedHashMap<String, Object>();
                line.put("i", Integer.parseInt(msg.getUserProperty("idx")));
                line.put("queue", msg.getQueueId());
                line.put("offset", msg.getQueueOffset());
                line.put("start", start);
                line.put("end", System.currentTimeMillis());
                emit(line);
                lines.incrementAndGet();
            }
            return ConsumeOrderlyStatus.SUCCESS;
        });
        consumer.start();
        Map<String, Object> ready = new LinkedHashMap<String, Object>();
        ready.put("ready", true);
        emit(ready);
        Thread.sleep(seconds * 1000L);
        consumer.shutdown();
        Map<String, Object> done = new LinkedHashMap<String, Object>();
        done.put("done", lines.get());
        emit(done);
    }
}
