// Java 4.7.0's own SQL92 parser and evaluator as a command for the compat
// tests, run in source-file mode: java -cp "$ROCKETMQ_HOME/lib/*" SelectorEval.java
//
// Reads cases from standard input, one field per line, strings hex-encoded
// as UTF-8 so any text passes unchanged:
//   E<hex expression>                       starts a case (compiled at once)
//   P<hex name>:<hex value>,...             one property map (may be empty)
//   .                                       ends the case
// and prints one line per case: ERR when the selector does not compile,
// else OK followed by one letter per property map: T (TRUE), F (FALSE),
// N (null), A (the evaluation threw), X (something else).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.apache.rocketmq.filter.FilterFactory;
import org.apache.rocketmq.filter.expression.EvaluationContext;
import org.apache.rocketmq.filter.expression.Expression;

public class SelectorEval {
    static String unhex(String text) {
        byte[] bytes = new byte[text.length() / 2];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) Integer.parseInt(text.substring(2 * i, 2 * i + 2), 16);
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }

    static Map<String, String> properties(String line) {
        Map<String, String> result = new HashMap<String, String>();
        if (line.isEmpty()) {
            return result;
        }
        for (String pair : line.split(",")) {
            int colon = pair.indexOf(':');
            result.put(unhex(pair.substring(0, colon)), unhex(pair.substring(colon + 1)));
        }
        return result;
    }

    static char evaluate(Expression expression, final Map<String, String> values) {
        EvaluationContext context = new EvaluationContext() {
            public Object get(String name) {
                return values.get(name);
            }

            public Map<String, Object> keyValues() {
                return new HashMap<String, Object>(values);
            }
        };
        try {
            Object result = expression.evaluate(context);
            if (result == null) {
                return 'N';
            }
            if (result instanceof Boolean) {
                return ((Boolean) result).booleanValue() ? 'T' : 'F';
            }
            return 'X';
        } catch (Throwable failure) {
            return 'A';
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in =
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        StringBuilder results = new StringBuilder();
        Expression expression = null;
        String line;
        while ((line = in.readLine()) != null) {
            if (line.startsWith("E")) {
                results.setLength(0);
                try {
                    expression = FilterFactory.INSTANCE.get("SQL92").compile(unhex(line.substring(1)));
                } catch (Throwable failure) {
                    expression = null;
                }
            } else if (line.startsWith("P")) {
                if (expression != null) {
                    results.append(evaluate(expression, properties(line.substring(1))));
                }
            } else if (line.equals(".")) {
                out.append(expression == null ? "ERR" : "OK" + results).append('\n');
            }
        }
        System.out.print(out);
        System.out.flush();
    }
}
