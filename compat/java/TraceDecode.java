// Java 4.7.0's own trace decoder as a command for the compat tests, run in
// source-file mode: java -cp "$ROCKETMQ_HOME/lib/*" TraceDecode.java
//
// Reads trace message bodies from standard input, one per line, hex-encoded
// UTF-8, and prints for each body one line per record it decodes to, the
// fields tab-separated:
//   Pub  timestamp regionId group topic msgId tags keys storeHost bodyLength
//        costTime msgType offsetMsgId success
//   SubBefore timestamp regionId group requestId msgId retryTimes keys
//   SubAfter requestId msgId costTime success keys contextCode
// then a line holding a single "." to end the body.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.rocketmq.client.trace.TraceBean;
import org.apache.rocketmq.client.trace.TraceContext;
import org.apache.rocketmq.client.trace.TraceDataEncoder;

public class TraceDecode {
    static String unhex(String text) {
        byte[] bytes = new byte[text.length() / 2];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) Integer.parseInt(text.substring(2 * i, 2 * i + 2), 16);
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }

    static String row(Object... fields) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < fields.length; i++) {
            if (i > 0) {
                out.append('\t');
            }
            out.append(fields[i]);
        }
        return out.toString();
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            List<TraceContext> decoded = TraceDataEncoder.decoderFromTraceDataString(unhex(line.trim()));
            for (TraceContext ctx : decoded) {
                TraceBean bean = ctx.getTraceBeans().get(0);
                switch (ctx.getTraceType()) {
                    case Pub:
                        System.out.println(row("Pub", ctx.getTimeStamp(), ctx.getRegionId(),
                            ctx.getGroupName(), bean.getTopic(), bean.getMsgId(), bean.getTags(),
                            bean.getKeys(), bean.getStoreHost(), bean.getBodyLength(),
                            ctx.getCostTime(), bean.getMsgType().ordinal(), bean.getOffsetMsgId(),
                            ctx.isSuccess()));
                        break;
                    case SubBefore:
                        System.out.println(row("SubBefore", ctx.getTimeStamp(), ctx.getRegionId(),
                            ctx.getGroupName(), ctx.getRequestId(), bean.getMsgId(),
                            bean.getRetryTimes(), bean.getKeys()));
                        break;
                    default:
                        System.out.println(row("SubAfter", ctx.getRequestId(), bean.getMsgId(),
                            ctx.getCostTime(), ctx.isSuccess(), bean.getKeys(),
                            ctx.getContextCode()));
                }
            }
            System.out.println(".");
        }
    }
}
