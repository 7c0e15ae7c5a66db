// A Java RocketMQ 4.7 producer with message traces on, as a command for the
// compat tests, run in source-file mode:
//   java -cp "$ROCKETMQ_HOME/lib/*" TraceProducer.java NAMESRV TOPIC COUNT
// Sends COUNT messages "body <i>" with tag TagJ and key jk<i>, prints each
// message's msgId on a line of its own, waits for the trace records to go
// out (Java's shutdown does not flush them) and stops.

import java.nio.charset.StandardCharsets;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;

public class TraceProducer {
    public static void main(String[] args) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("compat_java_traced", true);
        producer.setNamesrvAddr(args[0]);
        producer.setInstanceName("compat_trace_" + System.nanoTime());
        producer.start();
        int count = Integer.parseInt(args[2]);
        for (int i = 0; i < count; i++) {
            Message message = new Message(args[1], "TagJ", "jk" + i,
                ("body " + i).getBytes(StandardCharsets.UTF_8));
            SendResult result = producer.send(message);
            System.out.println(result.getMsgId());
        }
        System.out.flush();
        Thread.sleep(2000);
        producer.shutdown();
    }
}
