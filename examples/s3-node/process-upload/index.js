const AWS = require('aws-sdk');

exports.handler = async (event, context) => {
    console.log('Received event:', JSON.stringify(event, null, 2));

    for (const record of event.Records) {
        const bucket = record.s3.bucket.name;
        const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '));
        console.log(`Processing file ${key} from bucket ${bucket}`);
    }
};
