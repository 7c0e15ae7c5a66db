// Java RocketMQ 4.7 clients signing with AclClientRPCHook, for the ACL
// compat tests; run in source-file mode:
//   java -cp "$ROCKETMQ_HOME/lib/*" AclClient.java MODE NAMESRV TOPIC GROUP AK SK COUNT
//
//   produce  sends COUNT messages (sync); prints {"sent": n} or, at the
//            first failure, {"sent": n, "error": "<exception and causes>"}
//   pull     pulls every queue of TOPIC from offset 0 with a pull consumer;
//            prints {"pulled": n} or {"pulled": n, "error": "..."}

import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.RPCHook;

public class AclClient {
    static String quote(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    // The exception and its causes: a refused send is an MQClientException
    // whose cause holds the broker's answer.
    static String chain(Throwable e) {
        StringBuilder text = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (text.length() > 0) {
                text.append(" <- ");
            }
            text.append(t.toString());
        }
        return text.toString();
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String namesrv = args[1];
        String topic = args[2];
        String group = args[3];
        RPCHook hook = new AclClientRPCHook(new SessionCredentials(args[4], args[5]));
        int count = Integer.parseInt(args[6]);
        if (mode.equals("produce")) {
            DefaultMQProducer producer = new DefaultMQProducer(group, hook);
            producer.setNamesrvAddr(namesrv);
            producer.setRetryTimesWhenSendFailed(0);
            producer.start();
            int sent = 0;
            String error = null;
            try {
                for (int i = 0; i < count; i++) {
                    byte[] body = ("acl message " + i).getBytes(StandardCharsets.UTF_8);
                    producer.send(new Message(topic, "TagA", "KEY" + i, body));
                    sent++;
                }
            } catch (Exception e) {
                error = chain(e);
            }
            producer.shutdown();
            System.out.println("{\"sent\": " + sent + (error == null ? "" : ", \"error\": " + quote(error)) + "}");
        } else {
            DefaultMQPullConsumer consumer = new DefaultMQPullConsumer(group, hook);
            consumer.setNamesrvAddr(namesrv);
            consumer.start();
            int pulled = 0;
            String error = null;
            try {
                Set<MessageQueue> queues = consumer.fetchSubscribeMessageQueues(topic);
                for (MessageQueue queue : queues) {
                    long offset = 0;
                    while (true) {
                        PullResult result = consumer.pull(queue, "*", offset, 32);
                        if (result.getPullStatus() != PullStatus.FOUND) {
                            break;
                        }
                        pulled += result.getMsgFoundList().size();
                        offset = result.getNextBeginOffset();
                    }
                }
            } catch (Exception e) {
                error = chain(e);
            }
            consumer.shutdown();
            System.out.println("{\"pulled\": " + pulled + (error == null ? "" : ", \"error\": " + quote(error)) + "}");
        }
    }
}
