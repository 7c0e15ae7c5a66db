// Java's broadcasting push consumer for compat/test_broadcast.py, run in
// source-file mode: java -cp "$ROCKETMQ_HOME/lib/*" BroadcastClient.java ...
//
//   NAMESRV TOPIC GROUP INSTANCE COUNT SECONDS
//
// A DefaultMQPushConsumer in BROADCASTING mode with client IP 127.0.0.1 and
// instance name INSTANCE (so its client id, and the folder of its
// offsets.json under ${user.home}/.rocketmq_offsets, is 127.0.0.1@INSTANCE),
// consuming from the first offset when its file has no entry. It runs until
// COUNT messages arrived (or SECONDS passed), waits a second more for
// anything unexpected, shuts down (which writes its offsets file), and
// prints one JSON line per message ({"body": ..., "queue": ..., "offset": ...})
// and then {"done": n}.

import com.alibaba.fastjson.JSON;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.protocol.heartbeat.MessageModel;

public class BroadcastClient {
    public static void main(String[] args) throws Exception {
        final int count = Integer.parseInt(args[4]);
        long deadline = System.currentTimeMillis() + Long.parseLong(args[5]) * 1000;
        final List<Map<String, Object>> seen = new ArrayList<Map<String, Object>>();
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(args[2]);
        consumer.setNamesrvAddr(args[0]);
        consumer.setClientIP("127.0.0.1");
        consumer.setInstanceName(args[3]);
        consumer.setMessageModel(MessageModel.BROADCASTING);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(args[1], "*");
        consumer.registerMessageListener(new MessageListenerConcurrently() {
            public ConsumeConcurrentlyStatus consumeMessage(
                List<MessageExt> msgs, ConsumeConcurrentlyContext context) {
                synchronized (seen) {
                    for (MessageExt msg : msgs) {
                        Map<String, Object> item = new LinkedHashMap<String, Object>();
                        item.put("body", new String(msg.getBody(), StandardCharsets.UTF_8));
                        item.put("queue", msg.getQueueId());
                        item.put("offset", msg.getQueueOffset());
                        seen.add(item);
                    }
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            }
        });
        consumer.start();
        while (System.currentTimeMillis() < deadline) {
            synchronized (seen) {
                if (seen.size() >= count) {
                    break;
                }
            }
            Thread.sleep(100);
        }
        Thread.sleep(1000);
        consumer.shutdown();
        synchronized (seen) {
            for (Map<String, Object> item : seen) {
                System.out.println(JSON.toJSONString(item));
            }
            System.out.println("{\"done\":" + seen.size() + "}");
        }
        System.exit(0);
    }
}
