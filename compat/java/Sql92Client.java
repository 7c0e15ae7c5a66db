// The Java RocketMQ 4.7 client with SQL92 selectors, for the compat tests,
// run in source-file mode: java -cp "$ROCKETMQ_HOME/lib/*" Sql92Client.java ...
//
//   produce NAMESRV TOPIC COUNT                 message i has properties idx=i,
//                                               a=i, colour=red|blue|green (i%3;
//                                               none when i%7==0); prints "sent n"
//   push NAMESRV TOPIC GROUP SQL SECS           push consumer subscribed with
//                                               MessageSelector.bySql(SQL) for SECS
//                                               seconds; prints "idx <i>" per
//                                               message, then "done"
//   check NAMESRV TOPIC GROUP SQL               starts such a consumer and prints
//                                               "started" or "refused <code>"

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.MessageSelector;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

public class Sql92Client {
    static final String[] COLOURS = {"red", "blue", "green"};

    static void produce(String namesrv, String topic, int count) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("compat_sql92_producer");
        producer.setNamesrvAddr(namesrv);
        producer.start();
        int sent = 0;
        try {
            for (int i = 0; i < count; i++) {
                Message msg = new Message(topic, "TagA", ("body " + i).getBytes(StandardCharsets.UTF_8));
                msg.putUserProperty("idx", Integer.toString(i));
                msg.putUserProperty("a", Integer.toString(i));
                if (i % 7 != 0) {
                    msg.putUserProperty("colour", COLOURS[i % 3]);
                }
                SendResult result = producer.send(msg);
                if (result.getSendStatus() == SendStatus.SEND_OK) {
                    sent++;
                }
            }
        } finally {
            producer.shutdown();
        }
        System.out.println("sent " + sent);
    }

    static DefaultMQPushConsumer consumer(String namesrv, String topic, String group, String sql)
        throws MQClientException {
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, MessageSelector.bySql(sql));
        return consumer;
    }

    static void push(String namesrv, String topic, String group, String sql, int seconds)
        throws Exception {
        DefaultMQPushConsumer consumer = consumer(namesrv, topic, group, sql);
        consumer.registerMessageListener(new MessageListenerConcurrently() {
            public ConsumeConcurrentlyStatus consumeMessage(
                List<MessageExt> messages, ConsumeConcurrentlyContext context) {
                synchronized (System.out) {
                    for (MessageExt message : messages) {
                        System.out.println("idx " + message.getUserProperty("idx"));
                    }
                    System.out.flush();
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            }
        });
        consumer.start();
        Thread.sleep(seconds * 1000L);
        consumer.shutdown();
        System.out.println("done");
    }

    static void check(String namesrv, String topic, String group, String sql) throws Exception {
        DefaultMQPushConsumer consumer = consumer(namesrv, topic, group, sql);
        consumer.registerMessageListener(new MessageListenerConcurrently() {
            public ConsumeConcurrentlyStatus consumeMessage(
                List<MessageExt> messages, ConsumeConcurrentlyContext context) {
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            }
        });
        try {
            consumer.start();
            System.out.println("started");
        } catch (MQClientException refused) {
            System.out.println("refused " + refused.getResponseCode());
        } finally {
            consumer.shutdown();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("produce")) {
            produce(args[1], args[2], Integer.parseInt(args[3]));
        } else if (args[0].equals("push")) {
            push(args[1], args[2], args[3], args[4], Integer.parseInt(args[5]));
        } else if (args[0].equals("check")) {
            check(args[1], args[2], args[3], args[4]);
        } else {
            throw new IllegalArgumentException("unknown command " + args[0]);
        }
        System.exit(0);
    }
}
