// The Java RocketMQ 4.7 client's side of benchmarks/client.py, run in
// source-file mode: java -cp "$ROCKETMQ_HOME/lib/*" BenchClient.java ...
//
//   NAMESRV TOPIC GROUP COUNT SIZE WINDOW
//
// Three timed phases on one topic: COUNT sync sends one after another, COUNT
// async sends with at most WINDOW in flight, then a push consumer (from the
// first offset) until it has received all 2*COUNT. Prints one JSON object:
// each phase's seconds and the process CPU seconds it used.

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

public class BenchClient {
    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
            .getProcessCpuTime();
    }

    public static void main(String[] args) throws Exception {
        String namesrv = args[0];
        String topic = args[1];
        String group = args[2];
        int count = Integer.parseInt(args[3]);
        byte[] body = new byte[Integer.parseInt(args[4])];
        java.util.Arrays.fill(body, (byte) 'x');
        final Semaphore window = new Semaphore(Integer.parseInt(args[5]));

        DefaultMQProducer producer = new DefaultMQProducer(group + "_producer");
        producer.setNamesrvAddr(namesrv);
        producer.start();
        producer.send(new Message(topic, "bench", body)); // the route, the connection

        long cpu = cpuNanos();
        long start = System.nanoTime();
        for (int i = 1; i < count; i++) {
            producer.send(new Message(topic, "bench", body));
        }
        double syncSeconds = (System.nanoTime() - start) / 1e9;
        double syncCpu = (cpuNanos() - cpu) / 1e9;

        final CountDownLatch acked = new CountDownLatch(count);
        final AtomicInteger failed = new AtomicInteger();
        cpu = cpuNanos();
        start = System.nanoTime();
        for (int i = 0; i < count; i++) {
            window.acquire();
            producer.send(new Message(topic, "bench", body), new SendCallback() {
                public void onSuccess(SendResult result) {
                    window.release();
                    acked.countDown();
                }

                public void onException(Throwable e) {
                    failed.incrementAndGet();
                    window.release();
                    acked.countDown();
                }
            });
        }
        acked.await(60, TimeUnit.SECONDS);
        double asyncSeconds = (System.nanoTime() - start) / 1e9;
        double asyncCpu = (cpuNanos() - cpu) / 1e9;
        producer.shutdown();

        final int total = 2 * count;
        final CountDownLatch received = new CountDownLatch(total);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener(new MessageListenerConcurrently() {
            public ConsumeConcurrentlyStatus consumeMessage(
                List<MessageExt> msgs, org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext context) {
                for (int i = 0; i < msgs.size(); i++) {
                    received.countDown();
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            }
        });
        cpu = cpuNanos();
        start = System.nanoTime();
        consumer.start();
        boolean all = received.await(60, TimeUnit.SECONDS);
        double consumeSeconds = (System.nanoTime() - start) / 1e9;
        double consumeCpu = (cpuNanos() - cpu) / 1e9;
        consumer.shutdown();
        System.out.println("{\"sync_s\":" + syncSeconds + ",\"sync_cpu_s\":" + syncCpu
            + ",\"sync_count\":" + (count - 1)
            + ",\"async_s\":" + asyncSeconds + ",\"async_cpu_s\":" + asyncCpu
            + ",\"async_count\":" + count + ",\"async_failed\":" + failed.get()
            + ",\"consume_s\":" + consumeSeconds + ",\"consume_cpu_s\":" + consumeCpu
            + ",\"consume_count\":" + (total - received.getCount()) + ",\"consume_all\":" + all + "}");
        System.exit(0);
    }
}
