//! The one table of HTTP status names: response variants, response components and type names
//! all take their names from here.

/// The name of a status, as in `Ok`, `NotFound`, `UnprocessableEntity`, or `Status418` for a
/// status without one.
pub fn status_name(status: u16) -> String {
    match status_title(status) {
        Some(title) => title.split([' ', '-']).collect(),
        None => format!("Status{status}"),
    }
}

/// The reason phrase of a status, as in `Not Found`, for the statuses Prefiq names.
pub fn status_title(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "Ok",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_pascal_case_reason_phrases() {
        assert_eq!(status_name(200), "Ok");
        assert_eq!(status_name(412), "PreconditionFailed");
        assert_eq!(status_name(422), "UnprocessableEntity");
        assert_eq!(status_name(500), "InternalServerError");
        assert_eq!(status_name(418), "Status418");
    }
}
