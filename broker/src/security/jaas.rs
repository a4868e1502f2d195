//! JAAS configuration text as Kafka takes it in `sasl.jaas.config`:
//! `<LoginModule class> <flag> key="value" ... ;`. Only the options matter to the broker.

use std::collections::BTreeMap;

/// The options of a one-module JAAS config, in the order given.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let text = text.trim();
    let body = text
        .strip_suffix(';')
        .ok_or("a JAAS config ends with ';'")?
        .trim();
    let mut rest = body;
    let module = next_word(&mut rest).ok_or("the login module class is missing")?;
    if !module.contains('.') {
        return Err(format!("{module:?} is not a login module class name"));
    }
    let flag = next_word(&mut rest).ok_or("the control flag (required) is missing")?;
    if !matches!(flag, "required" | "requisite" | "sufficient" | "optional") {
        return Err(format!(
            "{flag:?} is not a control flag (required, requisite, sufficient, optional)"
        ));
    }
    let mut options = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(options);
        }
        let (key, after) = rest
            .split_once('=')
            .ok_or("expected key=\"value\" options after the control flag")?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("option name {key:?} is not valid"));
        }
        let (value, after) = option_value(after.trim_start())?;
        options.insert(key.to_string(), value);
        rest = after;
    }
}

fn next_word<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let (word, after) = text.split_at(end);
    *rest = after;
    Some(word)
}

/// A quoted value (with `\"` and `\\` escapes) or a bare word.
fn option_value(text: &str) -> Result<(String, &str), String> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((value, &quoted[i + 1..])),
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err("a quoted option value is not closed".to_string())
    } else {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        Ok((text[..end].to_string(), &text[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_and_bare_options() {
        let options = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="a \"quoted\" secret" user_bob=bare;"#,
        )
        .unwrap();
        assert_eq!(options["username"], "admin");
        assert_eq!(options["password"], r#"a "quoted" secret"#);
        assert_eq!(options["user_bob"], "bare");
    }

    #[test]
    fn rejects_what_is_not_a_jaas_config() {
        assert!(parse("user_a=\"x\"").is_err());
        assert!(parse("org.x.Module required user_a=\"x\"").is_err());
        assert!(parse("org.x.Module always user_a=\"x\";").is_err());
        assert!(parse("org.x.Module required user_a=\"x;").is_err());
        assert_eq!(parse("org.x.Module required;").unwrap().len(), 0);
    }
}
